"""The dataset service: its handlers, its publishers and its startup.

Handlers:
  loupe.dataset.commands  -> on_command   (request/reply with the gateway)
  loupe.dataset.jobs      -> on_job       (long work, committed only when finished)
  loupe.model.events      -> on_model_event (so DeleteProject knows about model versions)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from faststream import Context, ContextRepo
from faststream.asgi import AsgiFastStream

from loupe_common import dataset_messages as m
from loupe_common.blobs import open_blob_store
from loupe_common.db import connect
from loupe_common.kafka import (
    ensure_topics,
    make_broker,
    publish_with_retry,
    service_app,
    service_subscriber_options,
)
from loupe_common.lookout import BUSY_DATASET_STATUSES
from loupe_common.messages import Reply, answer
from loupe_common.requeue import SWEEP_SECONDS, RunningJobs, requeue_stale
from loupe_common.settings import Settings
from loupe_common.topics import DATASET_COMMANDS, DATASET_JOBS, MODEL_EVENTS

from . import datasets, entries, exports, projects, tags, uploads
from .jobs import run_job
from .sources import SourceReader
from .store import DatasetState, ensure_indexes

State = Annotated[DatasetState, Context("state")]
log = logging.getLogger("loupe.dataset")


def create_app(settings: Settings) -> AsgiFastStream:
    broker = make_broker(settings, client_id="dataset")
    to_jobs = broker.publisher(DATASET_JOBS)
    running = RunningJobs()
    states: list[DatasetState] = []

    async def enqueue(job: m.DatasetJob) -> None:
        await publish_with_retry(lambda: to_jobs.publish(job, key=job.project_name.encode()))

    async def dispatch(state: DatasetState, cmd: m.DatasetCommand) -> Reply:
        match cmd:
            case m.CreateProject():
                return await projects.create_project(state, cmd)
            case m.DescribeProject():
                return await projects.describe_project(state, cmd)
            case m.ListProjects():
                return await projects.list_projects(state, cmd)
            case m.DeleteProject():
                return await projects.delete_project(state, cmd)
            case m.CreateDataset():
                return await datasets.create_dataset(state, cmd, enqueue)
            case m.DescribeDataset():
                return await datasets.describe_dataset(state, cmd)
            case m.DeleteDataset():
                return await datasets.delete_dataset(state, cmd, enqueue)
            case m.UpdateDatasetEntries():
                return await datasets.update_dataset_entries(state, cmd, enqueue)
            case m.RemoveDatasetEntries():
                return await datasets.remove_dataset_entries(state, cmd, enqueue)
            case m.ListDatasetEntries():
                return await entries.list_dataset_entries(state, cmd)
            case m.TagProject():
                return await tags.tag_project(state, cmd)
            case m.UntagProject():
                return await tags.untag_project(state, cmd)
            case m.ListProjectTags():
                return await tags.list_project_tags(state, cmd)
            case m.StoreUpload():
                return await uploads.store_upload(state, cmd)
            case m.SummarizeDatasets():
                return await exports.summarize_datasets(state, cmd)
            case m.ExportEntries():
                return await exports.export_entries(state, cmd)

    @broker.subscriber(DATASET_COMMANDS, **service_subscriber_options(settings, "loupe-dataset"))
    async def on_command(cmd: m.DatasetCommand, state: State) -> Reply:
        return await answer(dispatch(state, cmd), service="dataset", command=cmd)

    @broker.subscriber(
        DATASET_JOBS,
        **service_subscriber_options(settings, "loupe-dataset-jobs", background=True,
                                     max_poll_interval_ms=60 * 60 * 1000),
        no_reply=True,
    )
    async def on_job(job: m.DatasetJob, state: State) -> None:
        with running.running(job.job_id):
            await run_job(state, job)

    async def requeue_lost_jobs() -> None:
        """A busy dataset whose job message was lost gets it again (loupe_common.requeue)."""
        def rebuild(doc: dict) -> m.DatasetJob | None:
            return m.DatasetJob.model_validate(doc["job"]) if doc.get("job") else None

        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                busy = {"status": {"$in": [s.value for s in BUSY_DATASET_STATUSES]}}
                await requeue_stale(states[0].datasets, busy, rebuild, enqueue, running)
            except Exception:  # noqa: BLE001 - the next sweep tries again
                log.exception("requeue sweep failed")

    @broker.subscriber(MODEL_EVENTS, **service_subscriber_options(settings, "loupe-dataset-models"),
                       no_reply=True)
    async def on_model_event(event: m.ModelVersionEvent, state: State) -> None:
        key = f"{event.project_name}/{event.model_version}"
        if event.kind == "created":
            await state.project_models.update_one(
                {"_id": key}, {"$set": {"project_name": event.project_name}}, upsert=True
            )
        else:
            await state.project_models.delete_one({"_id": key})

    @asynccontextmanager
    async def lifespan(context: ContextRepo) -> AsyncIterator[None]:
        state = DatasetState(
            settings=settings,
            db=connect(settings, owner="dataset"),
            blobs=open_blob_store(settings),
            sources=SourceReader(settings),
        )
        await ensure_indexes(state)
        await ensure_topics(settings)
        states.append(state)
        context.set_global("state", state)
        yield

    return service_app(broker, settings, lifespan=lifespan, background=[requeue_lost_jobs])
