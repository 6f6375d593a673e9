"""The request/reply envelope every command and reply on Kafka shares."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from pydantic import BaseModel, Field

from .errors import ErrorCode, LoupeError, ServiceError
from .lookout import ClientToken


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
            assert self.error is not None
            raise LoupeError.from_service_error(self.error)
        return self.result or {}


async def answer(work: Awaitable[Reply], *, service: str, command: Command) -> Reply:
    """Every command gets a reply: the result, the domain error, or InternalServerException."""
    try:
        return await work
    except LoupeError as err:
        return Reply.failure(err)
    except Exception:
        logging.getLogger(f"loupe.{service}").exception(
            "%s %s failed", getattr(command, "operation", "?"), command.request_id
        )
        return Reply.failure(LoupeError(ErrorCode.INTERNAL, f"The {service} service failed; try again"))
