"""The request/reply envelope every command and reply on Kafka shares, and the announcement of
the reply topics in use."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import Any

from pydantic import BaseModel, Field

from .errors import ErrorCode, LoupeError, ServiceError
from .logs import log_request
from .lookout import ClientToken
from .metrics import HANDLER_SECONDS


class Command(BaseModel):
    """Base of every command a gateway sends to a service. Subclasses add `operation` and fields."""

    request_id: str = Field(description="The x-amzn-RequestId of the HTTP request that caused it")
    client_token: ClientToken | None = Field(None, description="X-Amzn-Client-Token, when sent")


class Reply(BaseModel):
    ok: bool
    status: int = Field(200, description="HTTP status of a successful reply")
    result: dict[str, Any] | None = Field(None, description="The API response body (wire names)")
    error: ServiceError | None = None
    elapsed_ms: float | None = Field(None, description="The answering worker's own time (for Server-Timing)")

    @classmethod
    def success(cls, result: dict[str, Any] | None = None, status: int = 200) -> Reply:
        return cls(ok=True, status=status, result=result)

    @classmethod
    def failure(cls, err: LoupeError) -> Reply:
        return cls(ok=False, status=err.status, error=err.error)

    def unwrap(self) -> dict[str, Any]:
        if not self.ok:
            if self.error is None:
                raise LoupeError(ErrorCode.INTERNAL, "The service answered a failure without an error")
            raise LoupeError.from_service_error(self.error)
        return self.result or {}


class ReplyTopicsInUse(BaseModel):
    """On loupe.presence: a living process still reads these reply topics."""

    process: str = Field(description="The announcing process (role and process name)")
    topics: list[str]


async def answer(work: Awaitable[Reply], *, service: str, command: Command) -> Reply:
    """Every command gets a reply: the result, the domain error, or InternalServerException.
    Each one is timed (loupe_handler_seconds) and logged as one JSON line with its request id."""
    operation = getattr(command, "operation", "?")
    started = time.perf_counter()
    try:
        reply = await work
    except LoupeError as err:
        reply = Reply.failure(err)
    except Exception:
        logging.getLogger(f"loupe.{service}").exception("%s %s failed", operation, command.request_id)
        reply = Reply.failure(LoupeError(ErrorCode.INTERNAL, f"The {service} service failed; try again"))
    seconds = time.perf_counter() - started
    outcome = "ok" if reply.ok else reply.error.code.value if reply.error else "error"
    HANDLER_SECONDS.labels(service, operation, outcome).observe(seconds)
    log_request(request_id=command.request_id, operation=operation, outcome=outcome, status=reply.status,
                ms=round(seconds * 1000, 2))
    return reply
