"""Logs of every process, on stderr: plain one-line logs, and one JSON line per request handled
(logger `loupe.requests`: the gateway's HTTP requests, the services' commands) with its request id,
for log pipelines to parse without patterns."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

REQUESTS = logging.getLogger("loupe.requests")


def configure_logging(level: str, service: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s",
        force=True,
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    REQUESTS.handlers[:] = [handler]
    REQUESTS.propagate = False
    REQUESTS.setLevel(logging.INFO)
    _SERVICE[0] = service


_SERVICE = ["loupe"]


def log_request(**fields: Any) -> None:
    """One JSON line: time, service, then the caller's fields (request_id first by convention)."""
    if REQUESTS.isEnabledFor(logging.INFO):
        line = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "service": _SERVICE[0],
                **fields}
        REQUESTS.info(json.dumps(line, separators=(",", ":"), default=str))
