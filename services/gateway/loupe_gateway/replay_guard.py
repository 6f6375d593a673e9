"""Replayed requests: a signed request that changes something (any method but GET/HEAD, outside
DetectAnomalies and tagging) is acted on once. The same signature seen again while its date is
still accepted (15 minutes either way) is refused, so a captured DeleteProject cannot be sent again.

Not refused, because a repeat is harmless by the APIs' own contracts and SDKs rely on it:
- a request with an idempotency token (X-Amzn-Client-Token): the service answers the first
  answer again for 8 hours instead of acting (loupe_common.idempotency);
- operations idempotent by their arguments (REPEATABLE): A2I's StartHumanLoop (same name, same
  input) and StopHumanLoop, a flow definition created again with the same spec, an image uploaded
  again;
- a repeat of a request whose first answer was not a success (4xx, 5xx, 429): it did nothing, and
  an SDK retrying within the same second signs the same bytes with the same X-Amz-Date;
- detection: the same image twice in a second is a camera's right and changes nothing.

The memory is per gateway process (a replay sent to another replica is not caught) and bounded:
past MAX_ENTRIES the oldest signatures are forgotten first."""

from __future__ import annotations

import time
from collections import OrderedDict

from loupe_common.errors import ErrorCode, LoupeError

MAX_ENTRIES = 200_000  # ~40 MB at most; at 100 changes a second that is half an hour of them
IN_FLIGHT, DONE = "in flight", "done"
CLIENT_TOKEN = "x-amzn-client-token"  # noqa: S105 - the idempotency header's name, not a secret
REPEATABLE = frozenset({"start_human_loop", "stop_human_loop", "create_flow_definition", "upload_image"})


def guarded(method: str, operation: str, headers: dict[str, str]) -> bool:
    """Whether a signed request is one a replay of which is refused (see the module's notes)."""
    return method not in ("GET", "HEAD") and operation not in REPEATABLE and CLIENT_TOKEN not in headers


class ReplayGuard:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._seen: OrderedDict[str, tuple[float, str]] = OrderedDict()  # signature -> (forget at, state)
        self._max = max_entries

    def claim(self, signature: str, valid_until: float, now: float | None = None) -> None:
        """Take a signature, or LoupeError AccessDenied when it was already taken and not given back."""
        at = time.time() if now is None else now
        self._expire(at)
        seen = self._seen.get(signature)
        if seen is not None:
            raise LoupeError(ErrorCode.ACCESS_DENIED, "This signed request was already received "
                             f"({seen[1]}): a replay is refused; sign each request anew")
        self._seen[signature] = (valid_until, IN_FLIGHT)
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)

    def finish(self, signature: str, status: int) -> None:
        """After the answer: anything but a success did nothing, so the signature is given back."""
        entry = self._seen.get(signature)
        if entry is None:
            return
        if not 200 <= status < 300:
            del self._seen[signature]
        else:
            self._seen[signature] = (entry[0], DONE)

    def _expire(self, now: float) -> None:
        # In arrival order: an entry behind one that lives longer (a client with a skewed clock)
        # is kept a little longer than needed, never forgotten early.
        while self._seen:
            signature, (until, _) = next(iter(self._seen.items()))
            if until > now:
                return
            del self._seen[signature]

    def __len__(self) -> int:
        return len(self._seen)
