"""Autoscaling between MinInferenceUnits and MaxInferenceUnits: one step at a time, a cool-down
between additions, removal only after sustained idleness, never outside [min, max]."""

from __future__ import annotations

from loupe_hosting.autoscale import Autoscaler


def run(scaler: Autoscaler, busy: float, seconds: int, units: int, low: int = 1, high: int = 3,
        start: float = 0.0) -> list[int]:
    """Feed one sample per second; the unit counts decided along the way."""
    seen = []
    for t in range(seconds):
        scaler.observe("m", [busy] * units)
        units = scaler.decide("m", units, low, high, start + t)
        seen.append(units)
    return seen


def test_busy_units_grow_one_at_a_time_up_to_max():
    scaler = Autoscaler(up_cooldown=5, down_after=60)
    seen = run(scaler, busy=0.95, seconds=20, units=1)
    assert seen[0] == 2  # the first busy sample is enough to start
    assert seen[4] == 2 and seen[5] == 3  # the cool-down between additions
    assert max(seen) == 3 and seen[-1] == 3  # never above MaxInferenceUnits


def test_idle_units_shrink_only_after_the_idle_period_and_not_below_min():
    scaler = Autoscaler(up_cooldown=5, down_after=10)
    seen = run(scaler, busy=0.02, seconds=40, units=3, low=2)
    assert seen[:9] == [3] * 9  # idle, but not for long enough yet
    assert 2 in seen and min(seen) == 2  # one unit removed, never below MinInferenceUnits


def test_moderate_load_that_one_unit_fewer_could_not_carry_stays():
    # 2 units at 25 % busy: one unit would be 50 % busy, above the scale-down line.
    scaler = Autoscaler(up_cooldown=5, down_after=5)
    assert set(run(scaler, busy=0.25, seconds=30, units=2)) == {2}


def test_a_burst_does_not_flap():
    scaler = Autoscaler(up_cooldown=5, down_after=10)
    seen = run(scaler, busy=0.95, seconds=3, units=1)
    seen += run(scaler, busy=0.02, seconds=5, units=seen[-1], start=3)
    assert seen[-1] == 2  # a few idle seconds do not remove the unit just added


def test_fixed_size_deployments_are_left_alone():
    scaler = Autoscaler(up_cooldown=0, down_after=0)
    assert set(run(scaler, busy=1.0, seconds=5, units=2, low=2, high=2)) == {2}
    assert Autoscaler().decide("unknown", 1, 1, 3, 0.0) == 1  # no samples yet: no change
