"""Unit tests for the hosting scheduler (loupe_hosting.scheduler.assign): which live worker serves
which model version's units."""

from __future__ import annotations

import random
from collections.abc import Mapping

import pytest

from loupe_hosting.scheduler import assign

WORKERS = ["w1", "w2", "w3", "w4"]


def holders(placement: Mapping[str, set[str]], key: str) -> set[str]:
    return {worker for worker, keys in placement.items() if key in keys}


def loads(placement: Mapping[str, set[str]]) -> dict[str, int]:
    return {worker: len(keys) for worker, keys in placement.items()}


@pytest.mark.parametrize(
    ("units", "workers", "expected"), [(1, 4, 1), (2, 4, 2), (4, 4, 4), (6, 4, 4), (3, 1, 1)]
)
def test_places_min_of_units_and_workers_distinct_workers(units: int, workers: int, expected: int) -> None:
    placement = assign({"p:1": units}, WORKERS[:workers], {})
    assert len(holders(placement, "p:1")) == expected


def test_every_live_worker_is_listed_and_no_other() -> None:
    placement = assign({"p:1": 1}, ["w1", "w2", "w3"], {"dead": {"p:1"}})
    assert set(placement) == {"w1", "w2", "w3"}
    assert sum(map(len, placement.values())) == 1


def test_no_workers_places_nothing() -> None:
    assert assign({"p:1": 2}, [], {"gone": {"p:1"}}) == {}


def test_zero_units_places_nothing() -> None:
    placement = assign({"p:1": 0}, WORKERS, {"w1": {"p:1"}})
    assert holders(placement, "p:1") == set()


def test_resize_up_keeps_existing_placements() -> None:
    current = {"w2": {"p:1"}, "w3": {"q:1"}}
    placement = assign({"p:1": 3, "q:1": 1}, WORKERS, current)
    assert "w2" in holders(placement, "p:1") and len(holders(placement, "p:1")) == 3
    assert holders(placement, "q:1") == {"w3"}


def test_resize_down_keeps_a_subset_and_leaves_the_most_loaded_workers() -> None:
    current = {"w1": {"p:1", "q:1"}, "w2": {"p:1", "r:1"}, "w3": {"p:1"}, "w4": {"q:1"}}
    placement = assign({"p:1": 1, "q:1": 2, "r:1": 1}, WORKERS, current)
    # w1 and w2 carry two models each, w3 only this one: p's last unit stays on w3.
    assert holders(placement, "p:1") == {"w3"}
    assert holders(placement, "q:1") == {"w1", "w4"}
    assert holders(placement, "r:1") == {"w2"}


def test_resize_down_never_adds_a_worker() -> None:
    current = {"w1": {"p:1"}, "w2": {"p:1"}, "w3": {"p:1"}}
    placement = assign({"p:1": 2}, WORKERS, current)
    assert holders(placement, "p:1") < {"w1", "w2", "w3"} and len(holders(placement, "p:1")) == 2


def test_a_dead_worker_moves_only_its_own_models() -> None:
    current = {"w1": {"a:1", "b:1"}, "w2": {"b:1", "c:1"}, "w3": {"a:1", "c:1"}, "w4": {"d:1"}}
    wanted = {"a:1": 2, "b:1": 2, "c:1": 2, "d:1": 1}
    placement = assign(wanted, ["w1", "w2", "w4"], current)  # w3 died
    for worker in ("w1", "w2", "w4"):
        assert current[worker] <= placement[worker], f"{worker} lost a model it was serving"
    # w3's units went to the least-loaded survivor at each step: a to w4 (load 1), then c to w1
    # (w1 and w4 both at 2 by then; the name breaks the tie).
    assert holders(placement, "a:1") == {"w1", "w4"} and holders(placement, "c:1") == {"w1", "w2"}
    assert loads(placement) == {"w1": 3, "w2": 2, "w4": 2}


def test_when_workers_are_short_the_survivors_serve_everything_they_can() -> None:
    current = {"w1": {"a:1"}, "w2": {"a:1"}}
    assert assign({"a:1": 2}, ["w1"], current) == {"w1": {"a:1"}}


def test_a_returning_worker_restores_the_wanted_units() -> None:
    shrunk = assign({"a:1": 3}, ["w1", "w2"], {"w1": {"a:1"}, "w2": {"a:1"}, "w3": {"a:1"}})
    grown = assign({"a:1": 3}, ["w1", "w2", "w3"], shrunk)
    assert holders(grown, "a:1") == {"w1", "w2", "w3"}


def test_new_units_go_to_the_least_loaded_workers() -> None:
    current = {"w1": {"a:1", "b:1"}, "w2": {"a:1"}, "w3": set(), "w4": {"b:1"}}
    placement = assign({"a:1": 2, "b:1": 2, "new:1": 2}, WORKERS, current)
    assert holders(placement, "new:1") == {"w3", "w2"}  # loads 0 and 1 (w2 before w4 by name)


def test_fresh_placement_spreads_load_evenly() -> None:
    placement = assign({"a:1": 1, "b:1": 1, "c:1": 1, "d:1": 1}, WORKERS, {})
    assert loads(placement) == {"w1": 1, "w2": 1, "w3": 1, "w4": 1}


@pytest.mark.parametrize("seed", range(20))
def test_fresh_placement_loads_differ_by_at_most_one(seed: int) -> None:
    rng = random.Random(seed)
    workers = [f"w{i}" for i in range(rng.randint(1, 6))]
    wanted = {f"m{i}:1": rng.randint(1, 8) for i in range(rng.randint(1, 10))}
    placement = assign(wanted, workers, {})
    for key, units in wanted.items():
        assert len(holders(placement, key)) == min(units, len(workers))
    counts = loads(placement).values()
    assert max(counts) - min(counts) <= 1


def test_models_no_longer_wanted_are_dropped() -> None:
    current = {"w1": {"a:1", "old:1"}, "w2": {"old:1"}, "w3": {"old:2"}}
    placement = assign({"a:1": 1}, ["w1", "w2", "w3"], current)
    assert placement == {"w1": {"a:1"}, "w2": set(), "w3": set()}


def test_unchanged_input_keeps_the_placement() -> None:
    wanted = {"a:1": 2, "b:1": 3, "c:1": 1}
    first = assign(wanted, WORKERS, {})
    assert assign(wanted, WORKERS, first) == first


def test_output_is_deterministic_whatever_the_input_order() -> None:
    wanted = {"c:1": 1, "a:1": 2, "b:1": 3, "d:1": 1}
    current = {"w3": ["b:1", "a:1"], "w1": ["b:1"]}
    expected = assign(wanted, WORKERS, current)
    rng = random.Random(7)
    for _ in range(10):
        workers = rng.sample(WORKERS, len(WORKERS))
        shuffled_wanted = dict(rng.sample(sorted(wanted.items()), len(wanted)))
        shuffled_current = {w: list(reversed(keys)) for w, keys in reversed(current.items())}
        assert assign(shuffled_wanted, iter(workers), shuffled_current) == expected


def test_does_not_mutate_its_inputs() -> None:
    current = {"w1": {"a:1", "gone:1"}}
    wanted = {"a:1": 2}
    assign(wanted, ["w1", "w2"], current)
    assert current == {"w1": {"a:1", "gone:1"}} and wanted == {"a:1": 2}
