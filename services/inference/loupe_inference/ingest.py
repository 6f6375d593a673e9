"""The streaming path: every worker is a member of group loupe-ingest and answers each image on the
ingest topic with exactly one result on loupe.ingest.results.

At-least-once with duplicate suppression: a batch's offsets are committed only after its results
are published. A result goes to the results partition with the same number as the image's
partition, so when this worker is given a partition it reads the tail of that results partition
and skips the images a previous owner already answered but did not commit.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from loupe_common import ingest
from loupe_common.buckets import BucketError, FileRefRefused, FileRefs, open_buckets
from loupe_common.hosting_messages import HOSTED, AssignmentTable
from loupe_common.images import AILAB_CODES_FOR, MAX_IMAGE_BYTES, ImageRejected
from loupe_common.kafka import GroupJoin, register_group_join, watch_consumer
from loupe_common.metrics import INGEST_RESULTS_TOTAL
from loupe_common.settings import Settings
from loupe_common.topics import INGEST, INGEST_RESULTS, model_key

from . import scoring
from .review import ReviewStarter
from .models import ModelCache, ModelLoadError

log = logging.getLogger("loupe.inference.ingest")
BATCH = 16
LOOKBACK = 16 * BATCH  # results read back per partition on assignment (covers an uncommitted batch)
GROUP = "loupe-ingest"


class _Assignment(ConsumerRebalanceListener):
    def __init__(self, owner: IngestConsumer, join: GroupJoin) -> None:
        self.owner = owner
        self.join = join

    async def on_partitions_revoked(self, revoked) -> None:
        # A batch being answered finishes and commits first: otherwise its results could land
        # after the next owner (maybe this worker) read the results tail, and its images would be
        # answered twice.
        async with self.owner.batch:
            await self.join.on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned) -> None:
        await self.owner.recall_answered(assigned)
        await self.join.on_partitions_assigned(assigned)


class IngestConsumer:
    def __init__(self, settings: Settings, cache: ModelCache, producer: AIOKafkaProducer,
                 table: Callable[[], AssignmentTable | None], review: ReviewStarter) -> None:
        self._settings = settings
        self._review = review
        self._cache = cache
        self._producer = producer
        self._table = table
        self._buckets = open_buckets(settings)
        self._files = FileRefs(settings)
        self._answered: dict[int, set[int]] = {}
        # How many assignments this consumer had: records fetched under an older one are stale.
        self._assignments = 0
        self.batch = asyncio.Lock()  # held while a batch is answered and committed
        self._listener = _Assignment(self, register_group_join())
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id=f"loupe-ingest-{settings.instance_id}",
            group_id=GROUP,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            max_poll_interval_ms=300_000,
            fetch_max_wait_ms=settings.kafka_idle_fetch_max_wait_ms,
            max_partition_fetch_bytes=settings.kafka_max_message_bytes + 65536,
            fetch_max_bytes=settings.kafka_max_message_bytes * 2,
            metadata_max_age_ms=settings.kafka_metadata_max_age_ms,
        )
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        # Started before it subscribes, the consumer joins its group in the background: the worker
        # goes on to follow the assignment table (and serve detection) meanwhile, which matters
        # after a crash, when the join waits for the dead predecessor's session to expire.
        await self._consumer.start()
        watch_consumer(self._consumer)
        self._consumer.subscribe([INGEST], listener=self._listener)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._consumer.stop()

    async def recall_answered(self, assigned: set[TopicPartition]) -> None:
        """Offsets at or past the committed position whose result is already on the results topic."""
        self._answered = {}
        self._assignments += 1
        if not assigned:
            return
        reader = AIOKafkaConsumer(bootstrap_servers=self._settings.kafka_bootstrap, enable_auto_commit=False,
                                  fetch_max_wait_ms=self._settings.kafka_fetch_max_wait_ms)
        await reader.start()
        try:
            for tp in assigned:
                committed = await self._consumer.committed(tp) or 0
                # Both topics come from the catalogue with the same partition count.
                result_tp = TopicPartition(INGEST_RESULTS, tp.partition)
                reader.assign([result_tp])
                end = (await reader.end_offsets([result_tp]))[result_tp]
                reader.seek(result_tp, max(0, end - LOOKBACK))
                seen: set[int] = set()
                while await reader.position(result_tp) < end:
                    for record in (await reader.getmany(result_tp, timeout_ms=1000)).get(result_tp, []):
                        source = json.loads(record.value).get("source", {})
                        if source.get("topic") == INGEST and source.get("partition") == tp.partition \
                                and source.get("offset", -1) >= committed:
                            seen.add(source["offset"])
                self._answered[tp.partition] = seen
                if seen:
                    log.info("partition %s: %d images already answered by a previous owner", tp.partition,
                             len(seen))
        finally:
            await reader.stop()

    async def _run(self) -> None:
        # Until the first assignment table arrives this worker cannot tell a hosted model from
        # one that is not: images wait in the topic rather than get a false "not hosted".
        while self._table() is None:
            await asyncio.sleep(0.05)
        while True:
            batches = await self._consumer.getmany(timeout_ms=1000, max_records=BATCH)
            assignment = self._assignments  # what getmany returns belongs to the current assignment
            for tp, records in batches.items():
                async with self.batch:
                    # A rebalance while an earlier partition of this fetch was answered sends every
                    # partition back to its committed offset, even one given to this worker again:
                    # the rest of this fetch comes again, and answered now it would be answered twice.
                    failed = assignment == self._assignments and await self._answer_batch(tp, records)
                if failed:
                    await asyncio.sleep(1)

    async def _answer_batch(self, tp: TopicPartition, records: list[ConsumerRecord]) -> bool:
        """Answer and commit one batch; True when it failed and is tried again after a pause."""
        answered = self._answered.get(tp.partition, set())
        done: set[int] = set()
        try:
            for record in records:
                if record.offset not in answered:
                    await self._answer(record)
                    done.add(record.offset)
        except Exception:  # noqa: BLE001 - e.g. the broker unreachable: retry the rest later
            log.exception("ingest batch on %s failed; retrying it", tp)
            self._answered.setdefault(tp.partition, set()).update(done)  # not answered twice
            self._consumer.seek(tp, records[0].offset)
            return True
        try:
            await self._consumer.commit({tp: records[-1].offset + 1})
        except Exception as exc:  # noqa: BLE001 - rebalanced: the next owner skips what we answered
            log.warning("ingest commit of %s failed (%s)", tp, exc.__class__.__name__)
        return False

    async def _answer(self, record: ConsumerRecord) -> None:
        envelope = await self._outcome(record)
        try:
            await self._publish(record, envelope)
        except KafkaError as exc:
            if getattr(exc, "retriable", False):
                raise  # the batch is not committed: redelivered and answered later
            # e.g. a result larger than the broker accepts: the image still gets one outcome.
            log.warning("result for %s/%s not publishable (%s); sending an error result",
                        record.partition, record.offset, exc.__class__.__name__)
            position = ingest.Position(record.topic, record.partition, record.offset)
            await self._publish(record, ingest.result_envelope(
                position, image_id=envelope.get("image_id"), project_name=envelope.get("project"),
                model_version=envelope.get("model_version"), code="SERVICE_INTERNAL_ERROR",
                message=f"The result could not be published ({exc.__class__.__name__})"))

    async def _publish(self, record: ConsumerRecord, envelope: dict) -> None:
        envelope["worker"] = self._settings.instance_id  # which worker answered (operations, tests)
        INGEST_RESULTS_TOTAL.labels((envelope.get("error_detail") or {}).get("code") or "ok").inc()
        await self._producer.send_and_wait(
            INGEST_RESULTS, json.dumps(envelope).encode(), partition=record.partition,
            key=(envelope.get("image_id") or "").encode() or None,
            headers=[("content-type", b"application/json")],
        )

    async def _outcome(self, record: ConsumerRecord) -> dict:
        position = ingest.Position(record.topic, record.partition, record.offset)
        headers = {k: v for k, v in (record.headers or ())}
        image_id = ingest.image_id_of(record.value, headers)
        project = version = None
        try:
            image = ingest.parse(record.value, headers)
            image_id, project, version = image.image_id, image.project_name, image.model_version
            key = model_key(project, version)
            table = self._table()
            hosted = table.models.get(key) if table else None
            if hosted is None or hosted.status != HOSTED:
                raise ingest.IngestRejected("ERROR_RESOURCE_NOT_FOUND",
                                            f"Model version {version} of project {project} is not hosted")
            data = (image.data if image.data is not None
                    else await asyncio.to_thread(self._read_ref, image.image_ref))
            runtime = await self._cache.get(key, hosted)
            result, detection, info = await asyncio.to_thread(
                scoring.detect, runtime, data, content_type=image.content_type, threshold=None,
                with_mask=True)
            activation = await self._review.maybe_start(
                project_name=project, model_version=version, request_id=position.request_id, source="ingest",
                image_id=image_id, data=data, result=result, detection=detection, info=info)
            return ingest.result_envelope(position, image_id=image_id, project_name=project,
                                          model_version=version, detection=result["DetectAnomalyResult"],
                                          human_loop=activation)
        except ingest.IngestRejected as exc:
            code, message = exc.code, exc.message
        except ImageRejected as exc:
            code, message = AILAB_CODES_FOR[exc.reason], str(exc)
        except ModelLoadError as exc:
            code, message = "SERVICE_INTERNAL_ERROR", str(exc)
        except Exception as exc:  # noqa: BLE001 - every record gets an outcome, even an unexpected one
            log.exception("ingest record %s/%s failed", record.partition, record.offset)
            code, message = ("SERVICE_INTERNAL_ERROR",
                             f"The worker failed on this image ({exc.__class__.__name__})")
        return ingest.result_envelope(position, image_id=image_id, project_name=project,
                                      model_version=version, code=code, message=message)

    def _read_ref(self, ref: str | None) -> bytes:
        if ref is None:  # ingest.parse gives every image its bytes or an image_ref
            raise ingest.IngestRejected("ERROR_PARAMETERS",
                                        "The envelope needs exactly one of image (base64) and image_ref")
        try:
            if ref.startswith("file://"):
                return self._files.read(ref.removeprefix("file://"), max_bytes=MAX_IMAGE_BYTES)
            bucket, _, key = ref.removeprefix("s3://").partition("/")
            return self._buckets.read(bucket, key, max_bytes=MAX_IMAGE_BYTES)
        except FileRefRefused as exc:
            raise ingest.IngestRejected("ERROR_PARAMETERS", str(exc)) from None
        except BucketError as exc:
            raise ingest.IngestRejected("ERROR_FILE_NOT_FOUND", str(exc)) from None
