"""One inference worker: follows the hosting service's assignment table (start and stop units,
drop models nobody hosts any more), reports its state in heartbeats, and runs the ingest consumer
and the image tagging unit (the tagging models are hosted on every worker by default)."""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import suppress
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from loupe_common.blobs import BlobStore
from loupe_common.hosting_messages import AssignmentTable, ModelLoad, WorkerHeartbeat
from loupe_common.metrics import MODELS_LOADED
from loupe_common.settings import Settings

from .ingest import IngestConsumer
from .models import ModelCache
from .review import ReviewStarter
from .tagging import TaggingUnit
from .units import ModelUnit

log = logging.getLogger("loupe.inference.worker")


def threads_for(settings: Settings) -> int:
    return settings.inference_threads or os.cpu_count() or 1


class Worker:
    def __init__(self, settings: Settings, blobs: BlobStore) -> None:
        self.settings = settings
        self.worker_id = settings.instance_id
        self.started_at = datetime.now(UTC)
        self.threads = threads_for(settings)
        self.blobs = blobs
        self.cache = ModelCache(blobs, self.threads)
        self.units: dict[str, ModelUnit] = {}
        self.table: AssignmentTable | None = None
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, client_id=f"loupe-worker-{self.worker_id}",
            linger_ms=0, max_request_size=settings.kafka_max_message_bytes,
            metadata_max_age_ms=settings.kafka_metadata_max_age_ms,
            enable_idempotence=settings.kafka_idempotent_producer,
        )
        self.review = ReviewStarter(settings, blobs, self.producer)
        self.tagging = (TaggingUnit(settings, self.producer, blobs, self.threads) if settings.tagging_enabled
                        else None)
        self.ingest = IngestConsumer(settings, self.cache, self.producer, lambda: self.table, self.review)
        self._changed = asyncio.Event()
        self._follow: asyncio.Task | None = None

    async def start(self) -> None:
        await self.producer.start()
        await self.ingest.start()
        if self.tagging is not None:
            await self.tagging.start()
        self._follow = asyncio.create_task(self._follow_table())

    async def stop(self) -> None:
        if self._follow is not None:
            self._follow.cancel()
            with suppress(asyncio.CancelledError):
                await self._follow
        for unit in list(self.units.values()):
            await unit.stop()
        if self.tagging is not None:
            await self.tagging.stop()
        await self.ingest.stop()
        await self.producer.stop()

    def on_table(self, table: AssignmentTable) -> None:
        if (self.table is None or table.generation != self.table.generation
                or table.sent_at > self.table.sent_at):
            self.table = table
            self._changed.set()

    def heartbeat(self, *, stopping: bool = False) -> WorkerHeartbeat:
        MODELS_LOADED.set(sum(1 for load in self.cache.states.values() if load.state == "ready"))
        models = {key: ModelLoad(state=load.state, error=load.error,
                                 serving=key in self.units and self.units[key].serving,
                                 busy=self.units[key].busy_share() if key in self.units else 0.0)
                  for key, load in self.cache.states.items()}
        return WorkerHeartbeat(worker_id=self.worker_id, sent_at=datetime.now(UTC),
                               started_at=self.started_at, threads=self.threads, models=models,
                               stopping=stopping)

    async def _follow_table(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                await self._apply(self.table)
            except Exception:  # noqa: BLE001 - the next table tries again
                log.exception("applying the assignment table failed")

    async def _apply(self, table: AssignmentTable | None) -> None:
        if table is None:
            return
        mine = set(table.workers.get(self.worker_id, ()))
        for key in [k for k in self.units if k not in mine or k not in table.models]:
            log.info("unit for %s leaves this worker", key)
            await self.units.pop(key).stop()
        for key in [k for k in self.cache.keys() if k not in table.models]:
            self.cache.drop(key)
        for key in sorted(mine - set(self.units)):
            hosted = table.models.get(key)
            if hosted is None:
                continue
            unit = ModelUnit(self.settings, key, hosted, self.cache, self.producer, self.blobs, self.review)
            try:
                await unit.start()
            except Exception as exc:  # noqa: BLE001 - reported through the cache state in heartbeats
                log.warning("unit for %s did not start: %s", key, exc)
                continue
            self.units[key] = unit
            log.info("unit for %s started; it serves once it has joined the group", key)
