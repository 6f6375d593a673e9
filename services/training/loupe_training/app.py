"""The training service: its handlers, its publishers and its startup.

Handlers:
  loupe.training.commands -> on_command (request/reply with the gateway)
  loupe.training.jobs     -> on_job     (training runs, committed when the version is final)
  loupe.packaging.jobs    -> on_packaging_job (edge bundles, committed when the job is final)
Publishes: loupe.training.jobs and loupe.packaging.jobs (its own work), loupe.model.events
(versions created/deleted).
Asks the dataset service (loupe.dataset.commands) for dataset summaries and entry snapshots.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from faststream import Context, ContextRepo
from faststream.asgi import AsgiFastStream

from loupe_common import training_messages as m
from loupe_common.blobs import open_blob_store
from loupe_common.buckets import open_buckets
from loupe_common.db import connect
from loupe_common.kafka import (
    RequestClient,
    publish_with_retry,
    ensure_topics,
    make_broker,
    service_app,
    service_subscriber_options,
)
from loupe_common.messages import Reply, answer
from loupe_common.requeue import SWEEP_SECONDS, RunningJobs, requeue_stale
from loupe_common.settings import Settings
from loupe_common.topics import MODEL_EVENTS, PACKAGING_JOBS, TRAINING_COMMANDS, TRAINING_JOBS, reply_topic

from . import models, packaging, tags
from .models import TRAINING
from .jobs import run_training
from .store import TrainingState, ensure_indexes

State = Annotated[TrainingState, Context("state")]
log = logging.getLogger("loupe.training")
TRAINING_MAX_POLL_MS = 60 * 60 * 1000  # a run may take long; heartbeats continue meanwhile


def create_app(settings: Settings) -> AsgiFastStream:
    broker = make_broker(settings, client_id="training")
    replies = reply_topic("training", settings.process_name)
    dataset_client = RequestClient(broker, settings, replies)
    to_jobs = broker.publisher(TRAINING_JOBS)
    to_packaging = broker.publisher(PACKAGING_JOBS)
    to_events = broker.publisher(MODEL_EVENTS)
    running = RunningJobs()
    states: list[TrainingState] = []

    async def enqueue(job: m.TrainingJob) -> None:
        await publish_with_retry(lambda: to_jobs.publish(job, key=job.project_name.encode()))

    async def enqueue_packaging(job: m.PackagingJob) -> None:
        await publish_with_retry(lambda: to_packaging.publish(job, key=job.project_name.encode()))

    async def announce(event) -> None:
        await publish_with_retry(lambda: to_events.publish(event, key=event.project_name.encode()))

    async def dispatch(state: TrainingState, cmd: m.TrainingCommand) -> Reply:
        match cmd:
            case m.CreateModel():
                return await models.create_model(state, cmd, enqueue, announce)
            case m.DescribeModel():
                return await models.describe_model(state, cmd)
            case m.ListModels():
                return await models.list_models(state, cmd)
            case m.DeleteModel():
                return await models.delete_model(state, cmd, announce)
            case m.GetModelArtifacts():
                return await models.get_model_artifacts(state, cmd)
            case m.TagModel():
                return await tags.tag_model(state, cmd)
            case m.UntagModel():
                return await tags.untag_model(state, cmd)
            case m.ListModelTags():
                return await tags.list_model_tags(state, cmd)
            case m.ListHostingVersions():
                return await models.list_hosting_versions(state, cmd)
            case m.SetHostingStatus():
                return await models.set_hosting_status(state, cmd)
            case m.StartModelPackagingJob():
                return await packaging.start_packaging_job(state, cmd, enqueue_packaging)
            case m.DescribeModelPackagingJob():
                return await packaging.describe_packaging_job(state, cmd)
            case m.ListModelPackagingJobs():
                return await packaging.list_packaging_jobs(state, cmd)

    @broker.subscriber(TRAINING_COMMANDS, **service_subscriber_options(settings, "loupe-training"))
    async def on_command(cmd: m.TrainingCommand, state: State) -> Reply:
        return await answer(dispatch(state, cmd), service="training", command=cmd)

    @broker.subscriber(
        TRAINING_JOBS,
        **service_subscriber_options(settings, "loupe-training-jobs", background=True,
                                     max_poll_interval_ms=TRAINING_MAX_POLL_MS),
        no_reply=True,
    )
    async def on_job(job: m.TrainingJob, state: State) -> None:
        with running.running(job.job_id):
            await run_training(state, job)

    @broker.subscriber(
        PACKAGING_JOBS,
        **service_subscriber_options(settings, "loupe-training-packaging", background=True,
                                     max_poll_interval_ms=TRAINING_MAX_POLL_MS),
        no_reply=True,
    )
    async def on_packaging_job(job: m.PackagingJob, state: State) -> None:
        with running.running(job.job_id):
            await packaging.run_packaging(state, job)

    async def requeue_lost_jobs() -> None:
        """A TRAINING version whose job message was lost (the local broker restarted, or this
        service died before publishing it) gets its job again; see loupe_common.requeue."""
        def rebuild(doc: dict) -> m.TrainingJob:
            return m.TrainingJob(job_id=doc["job_id"], project_name=doc["project_name"],
                                 model_version=str(doc["version"]))

        def rebuild_packaging(doc: dict) -> m.PackagingJob:
            return m.PackagingJob(job_id=doc["job_id"], project_name=doc["project_name"],
                                  job_name=doc["job_name"])

        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await requeue_stale(states[0].models, {"status": TRAINING}, rebuild, enqueue, running)
                await requeue_stale(states[0].packaging_jobs,
                                    {"status": {"$in": [m.PACKAGING_CREATED, m.PACKAGING_RUNNING]}},
                                    rebuild_packaging, enqueue_packaging, running)
            except Exception:  # noqa: BLE001 - the next sweep tries again
                log.exception("requeue sweep failed")

    @asynccontextmanager
    async def lifespan(context: ContextRepo) -> AsyncIterator[None]:
        await ensure_topics(settings)
        await dataset_client.open()
        db = connect(settings, owner="training")
        state = TrainingState(settings=settings, db=db, blobs=open_blob_store(settings),
                              buckets=open_buckets(settings), datasets=dataset_client)
        await ensure_indexes(state)
        states.append(state)
        context.set_global("state", state)
        try:
            yield
        finally:
            await dataset_client.close()

    return service_app(broker, settings, lifespan=lifespan, background=[requeue_lost_jobs])
