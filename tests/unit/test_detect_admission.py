"""DetectAnomalies admission: a model's queue never grows deeper than its units can answer in half
the detect timeout (the finding: four 4096 x 4096 images made a small one wait 18 s)."""

from __future__ import annotations

from loupe_gateway.admission import MIN_PER_UNIT, DetectAdmission


def test_nothing_is_refused_before_anything_is_measured():
    admission = DetectAdmission(timeout_seconds=30)
    assert all(admission.admit("m", units=1) for _ in range(100))


def test_slow_images_close_the_queue_and_fast_ones_keep_it_open():
    admission = DetectAdmission(timeout_seconds=30)
    admission.admit("m", units=1)
    admission.done("m", worker_ms=6000)  # one huge image: 6 s of the worker's time
    admitted = [admission.admit("m", units=1) for _ in range(4)]
    assert admitted == [True, True, True, False]  # 15 s of budget / 6 s an image: 2.5 in flight
    for _ in range(3):
        admission.done("m", worker_ms=60)
    assert admission.seconds_per_image["m"] < 6  # the moving average follows the images
    fast = DetectAdmission(timeout_seconds=30)
    fast.admit("f", units=1)
    fast.done("f", worker_ms=60)
    assert sum(fast.admit("f", units=1) for _ in range(300)) == 250  # 15 s / 60 ms


def test_more_units_admit_more_and_each_has_a_floor():
    admission = DetectAdmission(timeout_seconds=30)
    admission.admit("m", units=1)
    admission.done("m", worker_ms=60_000)  # slower than the whole budget
    assert sum(admission.admit("m", units=3) for _ in range(20)) == MIN_PER_UNIT * 3
    assert not admission.admit("m", units=3)
    admission.done("m", worker_ms=None)  # a failed request frees its place without being timed
    assert admission.admit("m", units=3)
