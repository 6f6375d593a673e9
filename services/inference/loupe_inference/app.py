"""The inference worker process.

Handlers:
  loupe.hosting.assignments -> on_table (no group: every worker reads every table)
  loupe.humanloop.activations -> on_activations (which detections start a human loop)
  loupe.inference.requests.<project>.<version> -> ModelUnit (one consumer group per model version)
  loupe.ingest -> IngestConsumer (group loupe-ingest), results to loupe.ingest.results
  loupe.tagging.requests -> TaggingUnit (group loupe-tagging), Image Recognition tagging
Publishes: loupe.inference.heartbeats every heartbeat interval; DetectAnomalies replies to the
requesting gateway's reply topic; StartHumanLoop to loupe.humanloop.commands when a result meets a
flow definition's activation conditions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from faststream import ContextRepo
from faststream.asgi import AsgiFastStream

from loupe_common.blobs import open_blob_store
from loupe_common.hosting_messages import AssignmentTable
from loupe_common.kafka import ensure_topics, make_broker, publish_with_retry, service_app
from loupe_common.settings import Settings
from loupe_common.human_loop_messages import ActivationTable
from loupe_common.topics import HOSTING_ASSIGNMENTS, HUMAN_LOOP_ACTIVATIONS, WORKER_HEARTBEATS

from .worker import Worker


def create_app(settings: Settings) -> AsgiFastStream:
    broker = make_broker(settings, client_id="inference")
    workers: list[Worker] = []  # built in the lifespan: aiokafka clients need the running loop
    to_heartbeats = broker.publisher(WORKER_HEARTBEATS)

    @broker.subscriber(HOSTING_ASSIGNMENTS, auto_offset_reset="latest",
                       fetch_max_wait_ms=settings.kafka_idle_fetch_max_wait_ms, no_reply=True)
    async def on_table(table: AssignmentTable) -> None:
        if workers:
            workers[0].on_table(table)

    @broker.subscriber(HUMAN_LOOP_ACTIVATIONS, auto_offset_reset="latest",
                       fetch_max_wait_ms=settings.kafka_idle_fetch_max_wait_ms, no_reply=True)
    async def on_activations(table: ActivationTable) -> None:
        if workers:
            workers[0].review.on_table(table)

    async def beat() -> None:
        worker = workers[0]
        while True:
            with suppress(Exception):
                await to_heartbeats.publish(worker.heartbeat(), key=worker.worker_id.encode())
            await asyncio.sleep(settings.heartbeat_seconds)

    @asynccontextmanager
    async def lifespan(context: ContextRepo) -> AsyncIterator[None]:
        await ensure_topics(settings)
        workers.append(Worker(settings, open_blob_store(settings)))
        await workers[0].start()
        yield

    app = service_app(broker, settings, lifespan=lifespan, background=[beat])

    @app.on_shutdown
    async def leave() -> None:  # after the heartbeat loop stopped (service_app's hook runs first)
        if not workers:
            return
        worker = workers[0]
        with suppress(Exception):  # tell hosting now, instead of after the heartbeat timeout
            await publish_with_retry(lambda: to_heartbeats.publish(worker.heartbeat(stopping=True)))
        await worker.stop()

    return app
