"""The hosting service's state: deployments (MongoDB) and the live worker fleet (memory: liveness is
rebuilt from heartbeats within a second of a restart)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from loupe_common.db import Database
from loupe_common.hosting_messages import WorkerHeartbeat
from loupe_common.kafka import RequestClient
from loupe_common.settings import Settings


@dataclass
class Fleet:
    """Workers heard from recently, and what the hosting service last told each one to serve."""

    heartbeats: dict[str, WorkerHeartbeat] = field(default_factory=dict)
    last_seen: dict[str, float] = field(default_factory=dict)
    placement: dict[str, set[str]] = field(default_factory=dict)

    def heard(self, beat: WorkerHeartbeat) -> None:
        if beat.worker_id not in self.placement:
            # A worker we did not place (e.g. after our restart) keeps what it already serves.
            self.placement[beat.worker_id] = {k for k, m in beat.models.items() if m.serving}
        if beat.stopping:
            self.forget(beat.worker_id)
            return
        self.heartbeats[beat.worker_id] = beat
        self.last_seen[beat.worker_id] = time.monotonic()

    def forget(self, worker_id: str) -> None:
        self.heartbeats.pop(worker_id, None)
        self.last_seen.pop(worker_id, None)
        self.placement.pop(worker_id, None)

    def expire(self, timeout: float) -> list[str]:
        now = time.monotonic()
        dead = [w for w, seen in self.last_seen.items() if now - seen > timeout]
        for worker_id in dead:
            self.forget(worker_id)
        return dead

    def live(self) -> list[str]:
        return sorted(self.heartbeats)

    def ready_units(self, key: str) -> list[str]:
        """Workers placed on `key` whose model is loaded and whose unit has joined its group."""
        return [w for w, beat in self.heartbeats.items()
                if key in self.placement.get(w, ()) and (m := beat.models.get(key)) is not None
                and m.state == "ready" and m.serving]

    def busy_shares(self, key: str) -> list[float]:
        """How busy each ready unit of `key` was during its worker's last heartbeat interval."""
        return [self.heartbeats[w].models[key].busy for w in self.ready_units(key)]

    def failures(self, key: str) -> list[str]:
        return [m.error or "unknown error" for beat in self.heartbeats.values()
                if (m := beat.models.get(key)) is not None and m.state == "failed"]

    def holders(self, key: str) -> list[str]:
        return [w for w, beat in self.heartbeats.items() if key in beat.models]


@dataclass
class HostingState:
    settings: Settings
    db: Database
    training: RequestClient  # asks the training service, which owns model versions and their status
    fleet: Fleet = field(default_factory=Fleet)

    @property
    def deployments(self):
        """{_id: model key, project_name, model_version, status, min_units, max_units, units (now), topic,
        artifacts, status_message}"""
        return self.db["deployments"]
