"""An inference unit: this worker's membership in one model version's consumer group. Kafka spreads
the model's request partitions over its units; when a unit dies, its uncommitted requests go to
the others (offsets are committed only after the reply is published)."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.structs import TopicPartition

from loupe_common.blobs import BlobNotFound, BlobStore
from loupe_common.errors import ErrorCode, LoupeError, validation
from loupe_common.hosting_messages import (
    H_BLOB,
    H_CONTENT_TYPE,
    H_CORRELATION,
    H_HEATMAP,
    H_MASK,
    H_REPLY_TO,
    H_REQUEST_ID,
    H_THRESHOLD,
    HostedModel,
)
from loupe_common.images import AILAB_CODES_FOR, ImageRejected
from loupe_common.kafka import GroupJoin, watch_consumer
from loupe_common.messages import Reply
from loupe_common.settings import Settings
from loupe_common.topics import model_group

from . import scoring
from .models import ModelCache
from .review import ReviewStarter

log = logging.getLogger("loupe.inference.units")
BATCH = 8  # records per fetch; the batch's offsets are committed after all its replies are out


def header_text(headers: dict[str, bytes], name: str) -> str | None:
    value = headers.get(name)
    return value.decode() if value is not None else None


class RequestUnit:
    """A consumer-group member that answers request records (reply_to + correlation_id headers),
    committing a batch's offsets only after every reply of the batch is out."""

    def __init__(self, settings: Settings, topic: str, group: str, producer: AIOKafkaProducer,
                 blobs: BlobStore) -> None:
        self._settings = settings
        self._topic = topic
        self._group = group
        self._producer = producer
        self._blobs = blobs
        self._joined = GroupJoin()  # not registered: a unit does not gate the worker's /ready
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None
        self._busy = 0.0  # seconds spent answering since the last heartbeat
        self._since = time.monotonic()

    async def handle(self, value: bytes, headers: dict[str, bytes], blob: str | None) -> Reply:
        raise NotImplementedError

    def busy_share(self) -> float:
        """The share of the time since the last call spent answering (the autoscaler's signal)."""
        now = time.monotonic()
        share = self._busy / max(now - self._since, 1e-3)
        self._busy, self._since = 0.0, now
        return round(min(share, 1.0), 3)

    @property
    def serving(self) -> bool:
        return self._joined.joined

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap,
            client_id=f"loupe-unit-{self._settings.instance_id}",
            group_id=self._group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            fetch_max_wait_ms=self._settings.kafka_detect_fetch_max_wait_ms,
            max_partition_fetch_bytes=self._settings.kafka_max_message_bytes + 65536,
            fetch_max_bytes=self._settings.kafka_max_message_bytes * 2,
            metadata_max_age_ms=self._settings.kafka_metadata_max_age_ms,
        )
        await self._consumer.start()
        watch_consumer(self._consumer)
        # Subscribed after it started, the unit joins in the background (`serving` says when it
        # has): a worker's units, and its other work, do not wait for each other's joins.
        self._consumer.subscribe([self._topic], listener=self._joined)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Leave the group (the other units take the partitions at once, without a session timeout)."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
        self._joined.joined = False

    async def _run(self) -> None:
        if self._consumer is None:
            raise RuntimeError("the unit is not started")
        while True:
            batches = await self._consumer.getmany(timeout_ms=1000, max_records=BATCH)
            for tp, records in batches.items():
                sent: list[tuple[asyncio.Future, str | None]] = []
                try:
                    for record in records:
                        started = time.monotonic()
                        if (delivery := await self._answer(record)) is not None:
                            sent.append(delivery)
                        self._busy += time.monotonic() - started
                    # The next image is scored while the broker acknowledges the previous reply; the
                    # batch is committed only once every reply is acknowledged, and claim checks are
                    # removed only then (a failed reply redoes its request, which needs the image).
                    await asyncio.gather(*(ack for ack, _ in sent))
                    await self._remove_claim_checks([blob for _, blob in sent if blob])
                except Exception:  # noqa: BLE001 - e.g. the broker unreachable: redo the batch later
                    await asyncio.gather(*(ack for ack, _ in sent), return_exceptions=True)
                    log.exception("requests on %s failed; retrying them", tp)
                    self._consumer.seek(tp, records[0].offset)
                    await asyncio.sleep(1)
                    continue
                await self._commit(tp, records[-1].offset + 1)

    async def _commit(self, tp: TopicPartition, offset: int) -> None:
        if self._consumer is None:
            raise RuntimeError("the unit is not started")
        try:
            await self._consumer.commit({tp: offset})
        except Exception as exc:  # noqa: BLE001 - a rebalance mid-commit: the next owner redoes them
            log.warning("commit of %s failed (%s); those requests may be answered twice (the gateway "
                        "keeps the first answer)", tp, exc.__class__.__name__)

    async def _answer(self, record: ConsumerRecord) -> tuple[asyncio.Future, str | None] | None:
        """Answer one request: (the broker's acknowledgement of the reply, the claim check it used)."""
        headers = {k: v for k, v in (record.headers or ())}
        reply_to = header_text(headers, H_REPLY_TO)
        correlation = header_text(headers, H_CORRELATION)
        if not reply_to or not correlation:
            log.warning("dropping a request without reply_to/correlation_id at %s:%s", record.partition,
                        record.offset)
            return None
        blob = header_text(headers, H_BLOB)
        started = time.perf_counter()
        reply = await self.handle(record.value or b"", headers, blob)
        reply.elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
        acknowledged = await self._producer.send(
            reply_to, reply.model_dump_json().encode(),
            headers=[(H_CORRELATION, correlation.encode()), ("content-type", b"application/json")],
        )
        return acknowledged, blob

    async def _remove_claim_checks(self, blobs: list[str]) -> None:
        for blob in blobs:
            with suppress(BlobNotFound):
                await self._blobs.delete(blob)


class ModelUnit(RequestUnit):
    """An inference unit of one hosted model version: DetectAnomalies requests of its topic."""

    def __init__(self, settings: Settings, key: str, hosted: HostedModel, cache: ModelCache,
                 producer: AIOKafkaProducer, blobs: BlobStore, review: ReviewStarter) -> None:
        super().__init__(settings, hosted.topic, model_group(hosted.project_name, hosted.model_version),
                         producer, blobs)
        self.key = key
        self.hosted = hosted
        self._cache = cache
        self._review = review

    async def start(self) -> None:
        await self._cache.get(self.key, self.hosted)  # load and warm up before joining the group
        await super().start()

    async def handle(self, value: bytes, headers: dict[str, bytes], blob: str | None) -> Reply:
        request_id = header_text(headers, H_REQUEST_ID) or "?"
        try:
            data = await self._blobs.get(blob) if blob else value
            threshold = header_text(headers, H_THRESHOLD)
            runtime = await self._cache.get(self.key, self.hosted)
            project, version = self.hosted.project_name, self.hosted.model_version
            with_mask = header_text(headers, H_MASK) != "0"
            reviewed = self._review.covers(project, version)
            result, detection, info = await asyncio.to_thread(
                scoring.detect, runtime, data, content_type=header_text(headers, H_CONTENT_TYPE),
                threshold=float(threshold) if threshold else None, with_mask=with_mask or reviewed,
                with_heatmap=header_text(headers, H_HEATMAP) == "1",
            )
            if reviewed:
                activation = await self._review.maybe_start(
                    project_name=project, model_version=version, request_id=request_id,
                    source="DetectAnomalies", image_id=None, data=data, result=result, detection=detection,
                    info=info)
                if activation is not None:
                    result["HumanLoopActivationOutput"] = activation
                if not with_mask:
                    result["DetectAnomalyResult"].pop("AnomalyMask", None)
                    result.pop("AnomalyMask", None)
            return Reply.success(result)
        except ImageRejected as exc:
            return Reply.failure(validation(f"The image cannot be used: {exc}",
                                            ailab_code=AILAB_CODES_FOR[exc.reason]))
        except BlobNotFound:
            return Reply.failure(LoupeError(ErrorCode.INTERNAL,
                                            "The image was lost in transit; send it again"))
        except Exception:
            log.exception("detection %s on %s failed", request_id, self.key)
            return Reply.failure(LoupeError(ErrorCode.INTERNAL, "The inference worker failed; try again"))
