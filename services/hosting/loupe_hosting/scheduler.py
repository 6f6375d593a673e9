"""Which worker serves which model version: a pure function, so it is tested on its own.

Each active deployment wants `units` workers (capped by the live workers). Existing placements are
kept where possible (a resize or a dead worker moves as little as it can, so serving never stops);
new units go to the least-loaded workers, surplus units leave the most-loaded ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def assign(
    wanted: Mapping[str, int],
    workers: Iterable[str],
    current: Mapping[str, Iterable[str]],
) -> dict[str, set[str]]:
    live = sorted(workers)
    placement = {w: set(current.get(w, ())) & set(wanted) for w in live}

    def load(worker: str) -> tuple[int, str]:
        return len(placement[worker]), worker

    for key in sorted(wanted):
        target = min(wanted[key], len(live))
        holders = [w for w in live if key in placement[w]]
        for worker in sorted(holders, key=load, reverse=True)[: max(0, len(holders) - target)]:
            placement[worker].discard(key)
        free = sorted((w for w in live if key not in placement[w]), key=load)
        for worker in free[: max(0, target - len(holders))]:
            placement[worker].add(key)
    return placement
