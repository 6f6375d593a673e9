"""Lost job messages: a resource busy for a while with no run in progress gets its job published
again; one running here, one queued recently, or one already final is left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from loupe_common.db import connect
from loupe_common.requeue import RunningJobs, requeue_stale
from loupe_common.settings import Settings


class Job(BaseModel):
    job_id: str


async def test_only_stale_idle_busy_resources_are_requeued(tmp_path):
    db = connect(Settings(_env_file=None, data_dir=tmp_path), database="requeue")
    old, recent = datetime.now(UTC) - timedelta(minutes=5), datetime.now(UTC)
    await db.things.insert_many([
        {"_id": "lost", "status": "BUSY", "job_id": "j1", "updated_at": old},
        {"_id": "running", "status": "BUSY", "job_id": "j2", "updated_at": old},
        {"_id": "queued-just-now", "status": "BUSY", "job_id": "j3", "updated_at": old, "queued_at": recent},
        {"_id": "done", "status": "DONE", "job_id": "j4", "updated_at": old},
    ])
    running = RunningJobs()
    published: list[Job] = []

    async def publish(job: Job) -> None:
        published.append(job)

    with running.running("j2"):
        requeued = await requeue_stale(db.things, {"status": "BUSY"}, lambda d: Job(job_id=d["job_id"]),
                                       publish, running)
    assert requeued == ["lost"] and published == [Job(job_id="j1")]
    # Queued again now: not again at the next sweep, only after another REQUEUE_AFTER_SECONDS.
    assert await requeue_stale(db.things, {"status": "BUSY"}, lambda d: Job(job_id=d["job_id"]),
                               publish, running) == ["running"]
    assert len(published) == 2
