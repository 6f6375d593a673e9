"""Long work that outlives the broker's records.

A job message can be lost without a crash of the service that owns the job: the local broker keeps
records in memory (a restart drops what was queued), and a service killed between moving a
resource to a busy status and publishing its job never published it. The resource would then
stay in TRAINING or *_IN_PROGRESS for good. So each owner keeps enough in the resource's document
to rebuild the job, and a sweep publishes it again when the resource has been busy for a while
with no run of it in progress here. Running a job twice is safe: every job handler skips a job
whose resource has moved on (final status, or another job id).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel

log = logging.getLogger("loupe.requeue")
REQUEUE_AFTER_SECONDS = 60.0
SWEEP_SECONDS = 15.0
Job = TypeVar("Job", bound=BaseModel)


class RunningJobs:
    """The job ids this process is running now (never requeued while they run)."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    @contextmanager
    def running(self, job_id: str) -> Iterator[None]:
        self.ids.add(job_id)
        try:
            yield
        finally:
            self.ids.discard(job_id)


async def requeue_stale(
    collection: Any,
    busy: dict,
    rebuild: Callable[[dict], Job | None],
    publish: Callable[[Job], Awaitable[None]],
    running: RunningJobs,
    *,
    after: float = REQUEUE_AFTER_SECONDS,
) -> list[str]:
    """Publish again the job of every document matching `busy` that was last queued more than
    `after` seconds ago and is not running here; returns their ids."""
    now = datetime.now(UTC)
    cutoff = now - timedelta(seconds=after)
    requeued: list[str] = []
    async for doc in collection.find(busy):
        queued = doc.get("queued_at") or doc.get("updated_at") or doc.get("created_at")
        if doc.get("job_id") in running.ids or (queued is not None and _aware(queued) > cutoff):
            continue
        job = rebuild(doc)
        if job is None:
            continue
        await publish(job)
        await collection.update_one({"_id": doc["_id"], "job_id": doc.get("job_id")},
                                    {"$set": {"queued_at": now}})
        log.warning("%s has been %s since %s with no run in progress: its job is queued again",
                    doc["_id"], doc.get("status"), queued)
        requeued.append(doc["_id"])
    return requeued


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
