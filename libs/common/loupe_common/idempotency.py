"""X-Amzn-Client-Token: the same token and parameters within 8 hours give the first response again;
the same token with other parameters is a ConflictException. Records live in the owning service's
database (collection `client_tokens`, TTL-indexed)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo.errors import DuplicateKeyError

from .db import Database
from .errors import ErrorCode, LoupeError, ResourceType
from .messages import Command, Reply

TOKEN_LIFETIME = timedelta(hours=8)
COLLECTION = "client_tokens"


def fingerprint(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()


async def ensure_indexes(db: Database) -> None:
    await db[COLLECTION].create_index("expires_at", expireAfterSeconds=0)


async def recall(
    db: Database,
    *,
    operation: str,
    token: str | None,
    params: dict[str, Any],
    resource_type: ResourceType,
) -> dict | None:
    """The stored reply for this token, None if it is new; ConflictException if parameters differ."""
    if token is None:
        return None
    doc = await db[COLLECTION].find_one({"_id": f"{operation}:{token}"})
    if doc is None or doc["expires_at"] <= datetime.now(UTC):
        return None
    if doc["fingerprint"] != fingerprint(params):
        raise LoupeError(
            ErrorCode.CONFLICT,
            f"ClientToken {token} was already used for a {operation} request with other parameters",
            resource_id=token,
            resource_type=resource_type,
        )
    return doc["reply"]


async def remember(
    db: Database, *, operation: str, token: str | None, params: dict[str, Any], reply: dict
) -> None:
    if token is None:
        return
    now = datetime.now(UTC)
    doc = {
        "_id": f"{operation}:{token}",
        "fingerprint": fingerprint(params),
        "reply": reply,
        "created_at": now,
        "expires_at": now + TOKEN_LIFETIME,
    }
    try:
        await db[COLLECTION].insert_one(doc)
    except DuplicateKeyError:
        # An expired record still waiting for the TTL monitor: replace it.
        await db[COLLECTION].replace_one({"_id": doc["_id"]}, doc)


async def once(
    db: Database,
    command: Command,
    *,
    params: dict[str, Any],
    resource_type: ResourceType,
    work: Callable[[], Awaitable[Reply]],
    on_replay: Callable[[], Awaitable[None]] | None = None,
) -> Reply:
    """Run `work` unless this client token already produced a reply (then run `on_replay`, e.g.
    to drop what the retry brought along); remember the new reply."""
    operation = getattr(command, "operation")  # noqa: B009 - declared by each Command subclass, not the base
    stored = await recall(db, operation=operation, token=command.client_token, params=params,
                          resource_type=resource_type)
    if stored is not None:
        if on_replay is not None:
            await on_replay()
        return Reply.model_validate(stored)
    reply = await work()
    await remember(db, operation=operation, token=command.client_token, params=params,
                   reply=reply.model_dump(mode="json"))
    return reply
