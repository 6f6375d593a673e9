"""Inference units between MinInferenceUnits and MaxInferenceUnits, from how busy the units are.

Each worker reports, per model, the share of the last heartbeat interval its unit spent answering
(`ModelLoad.busy`). The hosting service smooths the mean over a model's units and adds a unit when
they stay busy, removes one when they stay idle, one step at a time with a cool-down, never outside
[min, max]. A pure class: the control loop feeds it heartbeats and reads the decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCALE_UP_ABOVE = 0.7    # mean busy share of the units
SCALE_DOWN_BELOW = 0.3  # ... measured as if one unit fewer had carried the same work
SMOOTHING = 0.4         # weight of the newest sample in the moving average


@dataclass
class ModelLoadHistory:
    busy: float = 0.0          # smoothed mean busy share of the model's units
    changed_at: float = float("-inf")  # when the unit count last changed (monotonic seconds)
    idle_since: float | None = None


@dataclass
class Autoscaler:
    up_cooldown: float = 5.0
    down_after: float = 60.0
    history: dict[str, ModelLoadHistory] = field(default_factory=dict)

    def observe(self, key: str, busy_shares: list[float]) -> None:
        """One control step's samples: the busy share of each ready unit of `key`."""
        if not busy_shares:
            return
        sample = sum(busy_shares) / len(busy_shares)
        entry = self.history.setdefault(key, ModelLoadHistory(busy=sample))
        entry.busy = SMOOTHING * sample + (1 - SMOOTHING) * entry.busy

    def decide(self, key: str, units: int, low: int, high: int, now: float) -> int:
        """The unit count for `key` now: `units` moved by at most one step, within [low, high]."""
        units = max(low, min(high, units))
        entry = self.history.get(key)
        if entry is None or low == high:
            return units
        if entry.busy > SCALE_UP_ABOVE and units < high and now - entry.changed_at >= self.up_cooldown:
            entry.changed_at, entry.idle_since = now, None
            return units + 1
        # Removing a unit must leave the rest below the scale-up line, or it would flap.
        if units > low and entry.busy * units / (units - 1) < SCALE_DOWN_BELOW:
            entry.idle_since = entry.idle_since if entry.idle_since is not None else now
            if now - entry.idle_since >= self.down_after:
                entry.changed_at, entry.idle_since = now, None
                return units - 1
        else:
            entry.idle_since = None
        return units

    def forget(self, key: str) -> None:
        self.history.pop(key, None)
