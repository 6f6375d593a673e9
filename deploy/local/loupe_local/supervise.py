"""`make run` as an orchestrator would run it: a process that dies is started again after a
backoff (1, 2, 4 … 30 s, reset once it has run for a minute), as Kubernetes or compose's
`restart: unless-stopped` do, instead of the whole system stopping."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .stack import Stack

BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
HEALTHY_AFTER_SECONDS = 60.0


@dataclass
class _Record:
    started: float
    failures: int = 0
    restart_at: float | None = None


@dataclass
class Supervisor:
    stack: Stack
    say: Callable[[str], None]
    records: dict[str, _Record] = field(default_factory=dict)

    def check(self, now: float | None = None) -> None:
        """One pass: note deaths, restart what is due. Call it every fraction of a second."""
        now = time.monotonic() if now is None else now
        for name, proc in list(self.stack.processes.items()):
            record = self.records.setdefault(name, _Record(started=now))
            if proc.poll() is None:
                if record.failures and now - record.started > HEALTHY_AFTER_SECONDS:
                    record.failures = 0
                continue
            if record.restart_at is None:
                delay = BACKOFF_SECONDS[min(record.failures, len(BACKOFF_SECONDS) - 1)]
                record.failures += 1
                record.restart_at = now + delay
                self.say(f"{name} exited with code {proc.returncode}; restarting it in {delay:.0f} s "
                         f"(see {self.stack.logs_dir / (name + '.log')})")
            elif now >= record.restart_at:
                try:
                    self.stack.restart(name)
                except Exception as exc:  # noqa: BLE001 - e.g. the broker not up yet: try again later
                    record.restart_at = None
                    self.say(f"{name} could not be restarted ({exc}); trying again")
                    continue
                record.started, record.restart_at = now, None
                self.say(f"{name} restarted (pid {self.stack.processes[name].pid})")
