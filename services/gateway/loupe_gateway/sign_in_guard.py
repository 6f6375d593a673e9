"""Password guessing slowed, without letting an outsider lock anyone out: one guard for every
sign-in that takes a secret (IAM tokens, the reviewer page, the web console).

Failures are counted in a sliding window per source address, per (account, source) and per
account. A source past its limit, or past its limit for one account, waits. An account under
attack from many sources (past the account limit) is closed only to the sources that have
already failed on it: whoever signs in with the right password from an address that has not been
guessing keeps getting in. The same answer comes for a name that exists and one that does not, so
the guard tells an attacker nothing about which accounts exist.

The counts live in this gateway process (ephemeral security state, not domain state): with N
gateway replicas an attacker gets N times the attempts, still a few per minute.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

WINDOW_SECONDS = 300.0
PER_SOURCE = 20  # wrong secrets from one address, whatever the account
PER_PAIR = 5  # wrong secrets for one account from one address
PER_ACCOUNT = 30  # wrong secrets for one account from every address
MAX_TRACKED = 50_000  # keys kept at most (oldest forgotten first)


@dataclass
class SignInGuard:
    window: float = WINDOW_SECONDS
    per_source: int = PER_SOURCE
    per_pair: int = PER_PAIR
    per_account: int = PER_ACCOUNT
    _failures: dict[tuple[str, ...], deque[float]] = field(default_factory=dict)

    def _recent(self, key: tuple[str, ...], at: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= at - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def wait_seconds(self, source: str, account: str, now: float | None = None) -> float:
        """0 when this attempt may go ahead; else how long until it may."""
        at = time.monotonic() if now is None else now
        source_times = self._recent(("source", source), at)
        pair_times = self._recent(("pair", account, source), at)
        account_times = self._recent(("account", account), at)
        waits = []
        if len(source_times) >= self.per_source:
            waits.append(source_times[-self.per_source] + self.window - at)
        if len(pair_times) >= self.per_pair:
            waits.append(pair_times[-self.per_pair] + self.window - at)
        if pair_times and len(account_times) >= self.per_account:
            waits.append(account_times[-self.per_account] + self.window - at)
        return max(waits, default=0.0)

    def failed(self, source: str, account: str, now: float | None = None) -> None:
        at = time.monotonic() if now is None else now
        key: tuple[str, ...]
        for key in (("source", source), ("pair", account, source), ("account", account)):
            self._failures.setdefault(
                key, deque(maxlen=max(self.per_source, self.per_pair, self.per_account))).append(at)
        if len(self._failures) > MAX_TRACKED:
            for key in list(self._failures)[: len(self._failures) - MAX_TRACKED]:
                del self._failures[key]

    def succeeded(self, source: str, account: str) -> None:
        self._failures.pop(("pair", account, source), None)


def refusal(seconds: float) -> str:
    return f"Too many failed sign-ins from this address; try again in {max(1, round(seconds))} s"
