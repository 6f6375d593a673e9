"""`loupe ingest`: publish a folder of images to the ingest topic and collect each image's result.
UI-free: main.py renders.

Results are read from the results topic's end as it was before the first send, and matched to
images by the position of the record we produced (topic, partition, offset), never by image id
alone: a folder sent twice has the same ids, and a previous run's late answers may still arrive.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiokafka.structs import RecordMetadata, TopicPartition

from loupe_common import ingest as contract
from loupe_common.images import CONTENT_TYPES, sniff_format
from loupe_common.settings import Settings
from loupe_common.topics import INGEST, INGEST_RESULTS

from .folders import FolderError, is_image

DEFAULT_TIMEOUT_SECONDS = 120.0
# Records sent but not yet acknowledged: bounds how many images are held in memory.
MAX_IN_FLIGHT = 16
POLL_SECONDS = 0.5

Source = tuple[int, int]  # (partition, offset) of a record we produced on the ingest topic


class IngestError(Exception):
    """The run cannot start (e.g. the topics do not exist); nothing was sent."""


class SkipImage(Exception):
    """This file is not sent; the message says why."""


# --- Target and settings ---------------------------------------------------------------------


def check_target(project: str, model_version: str) -> None:
    """ValueError if the worker would reject every record for this project/version, so a typo
    is a usage error rather than a folder's worth of failed results."""
    headers = {contract.H_PROJECT: project.encode(), contract.H_MODEL_VERSION: model_version.encode()}
    try:
        contract.parse(b"", headers)
    except contract.IngestRejected as exc:
        raise ValueError(exc.message) from None


def resolve_settings(bootstrap: str | None = None) -> Settings:
    """--bootstrap > LOUPE_KAFKA_BOOTSTRAP > the local default; the rest from LOUPE_* as the
    services read it, so message limits agree with theirs."""
    return Settings(kafka_bootstrap=bootstrap) if bootstrap else Settings()


# --- The folder --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderImage:
    path: Path
    image_id: str  # the path relative to DIR: unique within a run, the same on every run


@dataclass
class FolderScan:
    images: list[FolderImage] = field(default_factory=list)
    others: list[Path] = field(default_factory=list)  # files without a .png/.jpg/.jpeg name


def find_images(directory: Path) -> FolderScan:
    """Every .png/.jpg/.jpeg under DIR, in sorted relative-path order (repeatable runs)."""
    if not directory.is_dir():
        raise FolderError(f"{directory} is not a directory")
    scan = FolderScan()
    for path in sorted(directory.rglob("*"), key=lambda p: p.relative_to(directory).as_posix()):
        if not path.is_file():
            continue
        if is_image(path):
            scan.images.append(FolderImage(path, path.relative_to(directory).as_posix()))
        else:
            scan.others.append(path)
    return scan


def load_image(image: FolderImage, max_bytes: int) -> tuple[bytes, str]:
    """The file's bytes and content type (from its magic bytes, not its name); SkipImage if it
    cannot travel: over the broker's message limit, or not a PNG/JPEG inside."""
    try:
        size = image.path.stat().st_size
        if size > max_bytes:
            raise SkipImage(f"{size:,} bytes is over the {max_bytes:,}-byte Kafka message limit "
                            "(LOUPE_KAFKA_MAX_MESSAGE_BYTES)")
        data = image.path.read_bytes()
    except OSError as exc:
        raise SkipImage(f"cannot read the file ({exc.strerror or exc})") from None
    fmt = sniff_format(data)
    if fmt is None:
        raise SkipImage("the file is not a PNG or JPEG image")
    return data, CONTENT_TYPES[fmt]


def record_headers(
    project: str, model_version: str, image_id: str, content_type: str
) -> list[tuple[str, bytes]]:
    return [
        (contract.H_PROJECT, project.encode()),
        (contract.H_MODEL_VERSION, model_version.encode()),
        (contract.H_CONTENT_TYPE, content_type.encode()),
        (contract.H_IMAGE_ID, image_id.encode()),
    ]


# --- Matching results to images (pure) ---------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One image's result, without the mask (it is base64 PNG, too big for a summary)."""

    image_id: str  # the id we sent, not the envelope's (ours is what the user knows)
    partition: int
    offset: int
    request_id: str
    error_code: int  # 0 on success, else the HTTP status
    code: str  # AILabTools code; "" on success
    message: str
    is_anomalous: bool | None = None
    confidence: float | None = None
    anomalies: list[Any] | None = None

    @property
    def status(self) -> str:
        if self.is_anomalous is None:
            return "error"
        return "anomalous" if self.is_anomalous else "normal"

    def to_json(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "status": self.status,
            "error_code": self.error_code,
            "code": self.code,
            "message": self.message,
            "is_anomalous": self.is_anomalous,
            "confidence": self.confidence,
            "anomalies": self.anomalies,
            "request_id": self.request_id,
            "source": {"topic": INGEST, "partition": self.partition, "offset": self.offset},
        }


def source_of(envelope: Any) -> Source | None:
    """The ingest record an envelope answers, or None if it is not a well-formed ingest result."""
    if not isinstance(envelope, Mapping):
        return None
    source = envelope.get("source")
    if not isinstance(source, Mapping) or source.get("topic") != INGEST:
        return None
    partition, offset = source.get("partition"), source.get("offset")
    if type(partition) is not int or type(offset) is not int:
        return None
    return partition, offset


def outcome_of(envelope: Mapping[str, Any], image_id: str, source: Source) -> Outcome:
    raw_detail, raw_data = envelope.get("error_detail"), envelope.get("data")
    detail: Mapping[str, Any] = raw_detail if isinstance(raw_detail, Mapping) else {}
    error_code = envelope.get("error_code")
    data: Mapping[str, Any] = raw_data if isinstance(raw_data, Mapping) else {}
    result = data.get("DetectAnomalyResult")
    outcome = functools.partial(Outcome, image_id=image_id, partition=source[0], offset=source[1],
                                request_id=str(envelope.get("request_id") or ""))
    if error_code == 0 and isinstance(result, Mapping) and isinstance(result.get("IsAnomalous"), bool):
        return outcome(error_code=0, code="", message="", is_anomalous=result["IsAnomalous"],
                       confidence=result.get("Confidence"), anomalies=result.get("Anomalies"))
    if error_code == 0:  # success without a result: count it as an error rather than guess
        return outcome(error_code=0, code="MALFORMED_RESULT",
                       message="the result has no DetectAnomalyResult")
    return outcome(error_code=error_code if isinstance(error_code, int) else -1,
                   code=str(detail.get("code") or "UNKNOWN"), message=str(detail.get("message") or ""))


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)  # in the order results arrived
    missing: list[str] = field(default_factory=list)  # image ids with no result, in send order
    duplicates: int = 0  # further results for an image already answered (a redelivery)

    @property
    def normal(self) -> int:
        return sum(o.status == "normal" for o in self.outcomes)

    @property
    def anomalous(self) -> int:
        return sum(o.status == "anomalous" for o in self.outcomes)

    @property
    def errors(self) -> Counter[tuple[int, str]]:
        """(error_code, code) -> images."""
        return Counter((o.error_code, o.code) for o in self.outcomes if o.status == "error")


class ResultMatcher:
    """Folds result envelopes into outcomes for the records we sent; others' results are ignored.
    The worker is at-least-once, so the first result for a record counts and later ones are
    duplicates (a redelivered record gets the same answer)."""

    def __init__(self, sent: Mapping[Source, str]) -> None:
        self.sent = dict(sent)
        self.outcomes: dict[Source, Outcome] = {}
        self.duplicates = 0

    @property
    def done(self) -> bool:
        return len(self.outcomes) == len(self.sent)

    def add(self, envelope: Any) -> Outcome | None:
        """The new outcome if this envelope is the first result for one of our images."""
        source = source_of(envelope)
        if source is None or source not in self.sent:
            return None
        if source in self.outcomes:
            self.duplicates += 1
            return None
        outcome = self.outcomes[source] = outcome_of(envelope, self.sent[source], source)
        return outcome

    def summary(self) -> Summary:
        missing = [image_id for source, image_id in self.sent.items() if source not in self.outcomes]
        return Summary(list(self.outcomes.values()), missing, self.duplicates)


def summarize(sent: Mapping[Source, str], results: Iterable[Any]) -> Summary:
    """Outcomes of the records we sent ((partition, offset) -> image id) among result envelopes."""
    matcher = ResultMatcher(sent)
    for envelope in results:
        matcher.add(envelope)
    return matcher.summary()


# --- The run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotSent:
    image_id: str
    reason: str


@dataclass
class IngestReport:
    project: str
    model_version: str
    bootstrap: str
    image_ids: list[str]  # every image found, in folder order
    others: int = 0  # non-image files ignored
    skipped: list[NotSent] = field(default_factory=list)  # not sent by design (too large, not an image)
    failed: list[NotSent] = field(default_factory=list)  # the broker refused or did not acknowledge
    sent: int = 0
    summary: Summary = field(default_factory=Summary)

    @property
    def exit_code(self) -> int:
        # Error results are outcomes; an image we cannot account for is not.
        return 1 if self.summary.missing or self.failed else 0

    def lines(self) -> Iterable[dict[str, Any]]:
        """One JSON object per image found, in folder order."""
        by_id: dict[str, dict[str, Any]] = {o.image_id: o.to_json() for o in self.summary.outcomes}
        by_id |= {i: {"image_id": i, "status": "no_result"} for i in self.summary.missing}
        for status, entries in (("failed", self.failed), ("skipped", self.skipped)):
            by_id |= {n.image_id: {"image_id": n.image_id, "status": status, "message": n.reason}
                      for n in entries}
        return (by_id[i] for i in self.image_ids if i in by_id)


def write_jsonl(path: Path, report: IngestReport) -> None:
    with path.open("w", encoding="utf-8") as out:
        for line in report.lines():
            out.write(json.dumps(line, ensure_ascii=False) + "\n")


class IngestHooks(Protocol):
    """Progress callbacks for a UI; all optional (a subclass inherits these no-ops, and any object
    with these methods will do: main.RichIngestHooks). Called from the event loop's thread only."""

    def images_found(self, scan: FolderScan) -> None: return None
    def publish_started(self, total: int) -> None: return None
    def image_done(self, image_id: str, not_sent: NotSent | None, failed: bool) -> None: return None
    def publish_finished(self) -> None: return None
    def results_started(self, expected: int) -> None: return None
    def result_received(self, outcome: Outcome) -> None: return None
    def results_finished(self) -> None: return None


class NoIngestHooks(IngestHooks):
    """Reports nothing: run_ingest's hooks when the caller gives none."""


def _consumer(settings: Settings) -> AIOKafkaConsumer:
    # No group: we assign partitions and seek ourselves, and must not move any group's offsets.
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="loupe-cli-ingest",
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        max_partition_fetch_bytes=settings.kafka_max_message_bytes + 65536,
        fetch_max_bytes=settings.kafka_max_message_bytes * 2,
    )


def _producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="loupe-cli-ingest",
        max_request_size=settings.kafka_max_message_bytes,
        enable_idempotence=settings.kafka_idempotent_producer,
        linger_ms=0,
    )


async def _watch_results(consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
    """Read results from the current end of every partition: earlier ones answer someone else."""
    topics = await consumer.topics()
    for name in (INGEST, INGEST_RESULTS):
        if name not in topics:  # checked first: waiting on a missing topic's metadata would hang
            raise IngestError(f"topic {name} does not exist on this broker (Loupe creates it when its "
                              "services start; is Loupe running against this bootstrap server?)")
    # The producer's partitions_for waits for the topic's metadata; the consumer's own
    # partitions_for_topic only reads a cache that an unsubscribed consumer never fills.
    partitions = sorted(await producer.partitions_for(INGEST_RESULTS))
    tps = [TopicPartition(INGEST_RESULTS, p) for p in partitions]
    consumer.assign(tps)
    for tp, end in (await consumer.end_offsets(tps)).items():
        consumer.seek(tp, end)


class _Publisher:
    """Sends one record per image, at most MAX_IN_FLIGHT unacknowledged, and notes each
    record's position from the broker's acknowledgement."""

    def __init__(
        self, producer: AIOKafkaProducer, report: IngestReport, max_bytes: int, hooks: IngestHooks
    ) -> None:
        self.producer = producer
        self.report = report
        self.max_bytes = max_bytes
        self.hooks = hooks
        self.pending: dict[asyncio.Future[RecordMetadata], FolderImage] = {}
        self.placed: dict[str, Source] = {}

    async def publish(self, images: Sequence[FolderImage]) -> dict[Source, str]:
        for image in images:
            await self._send(image)
            if len(self.pending) >= MAX_IN_FLIGHT:
                await self._settle(asyncio.FIRST_COMPLETED)
        await self._settle(asyncio.ALL_COMPLETED)
        return {self.placed[i.image_id]: i.image_id for i in images if i.image_id in self.placed}

    async def _send(self, image: FolderImage) -> None:
        try:
            data, content_type = load_image(image, self.max_bytes)
            report = self.report
            headers = record_headers(report.project, report.model_version, image.image_id, content_type)
            future = await self.producer.send(INGEST, data, key=image.image_id.encode(), headers=headers)
        except SkipImage as exc:
            self._not_sent(image, str(exc), failed=False)
        except MessageSizeTooLargeError:  # the headers tipped it over the limit
            self._not_sent(image, f"over the {self.max_bytes:,}-byte Kafka message limit with its headers",
                           failed=False)
        except KafkaError as exc:
            self._not_sent(image, f"{type(exc).__name__}: {exc}", failed=True)
        else:
            self.pending[future] = image

    async def _settle(self, return_when: str) -> None:
        if not self.pending:
            return
        done, _ = await asyncio.wait(self.pending, return_when=return_when)
        for future in done:
            image = self.pending.pop(future)
            if future.exception() is not None:
                exc = future.exception()
                self._not_sent(image, f"{type(exc).__name__}: {exc}", failed=True)
                continue
            meta = future.result()
            self.placed[image.image_id] = (meta.partition, meta.offset)
            self.report.sent += 1
            self.hooks.image_done(image.image_id, None, failed=False)

    def _not_sent(self, image: FolderImage, reason: str, *, failed: bool) -> None:
        entry = NotSent(image.image_id, reason)
        (self.report.failed if failed else self.report.skipped).append(entry)
        self.hooks.image_done(image.image_id, entry, failed=failed)


def _envelope(value: bytes | None) -> Any:
    try:
        return json.loads(value or b"")
    except ValueError:  # not ours to judge: someone else's garbage on the results topic
        return None


async def _collect(consumer: AIOKafkaConsumer, sent: Mapping[Source, str], timeout: float,
                   hooks: IngestHooks) -> Summary:
    matcher = ResultMatcher(sent)
    deadline = time.monotonic() + timeout
    hooks.results_started(len(sent))
    try:
        while not matcher.done and (remaining := deadline - time.monotonic()) > 0:
            batches = await consumer.getmany(timeout_ms=int(min(remaining, POLL_SECONDS) * 1000) or 1)
            for records in batches.values():
                for record in records:
                    if (outcome := matcher.add(_envelope(record.value))) is not None:
                        hooks.result_received(outcome)
    finally:
        hooks.results_finished()
    return matcher.summary()


async def exchange(
    scan: FolderScan, report: IngestReport, settings: Settings, timeout: float, hooks: IngestHooks
) -> None:
    """Publish every image, then wait up to `timeout` seconds (from the last acknowledgement)
    for their results; fills `report`."""
    consumer, producer = _consumer(settings), _producer(settings)
    await consumer.start()
    try:
        await producer.start()
        try:
            await _watch_results(consumer, producer)  # before the first send: no result is missed
            hooks.publish_started(len(scan.images))
            try:
                publisher = _Publisher(producer, report, settings.kafka_max_message_bytes, hooks)
                sent = await publisher.publish(scan.images)
            finally:
                hooks.publish_finished()
        finally:
            await producer.stop()
        report.summary = await _collect(consumer, sent, timeout, hooks) if sent else Summary()
    finally:
        await consumer.stop()


def run_ingest(
    directory: Path,
    project: str,
    model_version: str,
    *,
    settings: Settings | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    hooks: IngestHooks | None = None,
) -> IngestReport:
    """Send every image under DIR to the project's model version and collect the outcomes.

    Raises ValueError (bad project/version), FolderError (bad DIR), IngestError and KafkaError
    (the broker or the topics are not there); per-image problems land in the report instead.
    """
    check_target(project, model_version)
    hooks = hooks or NoIngestHooks()
    settings = settings or resolve_settings()
    scan = find_images(Path(directory))
    if not scan.images:
        raise FolderError(f"{directory} holds no .png, .jpg or .jpeg files")
    hooks.images_found(scan)
    report = IngestReport(project, model_version, settings.kafka_bootstrap,
                          image_ids=[i.image_id for i in scan.images], others=len(scan.others))
    asyncio.run(exchange(scan, report, settings, timeout, hooks))
    return report
