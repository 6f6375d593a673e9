"""The human-loop service's state: MongoDB collections (flow definitions, human loops, reviewers,
sessions, access keys, per-project review counts), blob storage for task images and masks, the buckets
output.json is written to, and the clients it uses to reach the other services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loupe_common.blobs import BlobStore
from loupe_common.buckets import BucketRoot, S3Buckets
from loupe_common.db import Database
from loupe_common.human_loop_messages import flow_arn, loop_arn
from loupe_common.kafka import RequestClient
from loupe_common.settings import Settings

Publish = Callable[[str, dict[str, Any]], Awaitable[None]]


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class HumanLoopState:
    settings: Settings
    db: Database
    blobs: BlobStore
    buckets: BucketRoot | S3Buckets
    rpc: RequestClient
    publish_event: Publish  # (loop name, event data) -> loupe.humanloop.events
    activations_changed: Callable[[], None]
    keys_changed: Callable[[], None]

    @property
    def flows(self) -> Any:
        return self.db["flow_definitions"]

    @property
    def loops(self) -> Any:
        return self.db["human_loops"]

    @property
    def reviewers(self) -> Any:
        return self.db["reviewers"]

    @property
    def sessions(self) -> Any:
        return self.db["review_sessions"]

    @property
    def keys(self) -> Any:
        return self.db["access_keys"]

    @property
    def reviewed(self) -> Any:
        return self.db["reviewed_images"]

    def loop_arn(self, name: str) -> str:
        return loop_arn(self.settings.region, self.settings.account_id, name)

    def flow_arn(self, name: str) -> str:
        return flow_arn(self.settings.region, self.settings.account_id, name)


async def ensure_indexes(db: Database) -> None:
    await db["human_loops"].create_index([("flow_name", 1), ("created_at", 1), ("_id", 1)])
    await db["human_loops"].create_index([("status", 1)])
    # MongoDB removes expired sessions by itself (the embedded store ignores TTL; sign-in checks expiry).
    await db["review_sessions"].create_index([("expires_at", 1)], expireAfterSeconds=0)
