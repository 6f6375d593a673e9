"""Broker memory benchmark: the local broker's resident memory (Tansu, started as `make run` starts
it: memory storage) under a long, steady load shaped like Loupe's traffic, and whether it ever
drops a record although every topic has a retention (topics.Retention).

The load, at steady rates:
- DetectAnomalies: an image of --image-kb (random bytes: as incompressible as JPEG or PNG) on a
  model request topic with the gateway's headers; in the record or, above --claim-check-bytes, as
  a claim check in the local blob store, as the gateway sends it (`make run` with its own broker
  sends every image by claim check: loupe_local.stack.OWN_BROKER_ENV). A unit (the model's consumer
  group) answers each on the reply topic with a Reply shaped like a DetectAnomalies result (a PNG
  mask of the image's size), commits, and removes the claim check, as the inference units do; a
  reader on the reply topic takes the place of the gateway.
- ingest: users' images on loupe.ingest (in the record, as `loupe ingest` sends them) and one
  result envelope per image on loupe.ingest.results, as the workers publish it.
- what Loupe sends whatever the load, at its settings' rates: one worker's heartbeat and the
  assignment table every heartbeat_seconds, the activation table every activation_table_seconds,
  and the presence of four processes' reply topics six times per reply_topic_grace_seconds.

Every --sample-seconds: the broker's RSS, the records and MiB sent. At the end: the RSS slope
(least squares), MiB of RSS per MiB sent, what each kind of record added, and each topic's first
offset (above 0 only if the broker dropped records).

Run: .venv/bin/python tests/benchmarks/bench_broker_memory.py [--minutes 30] [--rate 1] [--ingest-rate 0.2]
     ... --claim-check-bytes 524288   the services' default: images up to 512 KiB in the record
Prints figures; asserts nothing (targets are judged by reading them).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import TopicPartition
from PIL import Image, ImageDraw

from loupe_common import ingest
from loupe_common.blobs import LocalBlobStore
from loupe_common.hosting_messages import (
    H_BLOB,
    H_CONTENT_TYPE,
    H_CORRELATION,
    H_HEATMAP,
    H_MASK,
    H_REPLY_TO,
    H_REQUEST_ID,
    AssignmentTable,
    HostedModel,
    ModelLoad,
    WorkerHeartbeat,
)
from loupe_common.human_loop_messages import ActivationTable
from loupe_common.kafka import ensure_topics
from loupe_common.messages import Reply, ReplyTopicsInUse
from loupe_common.settings import Settings
from loupe_common.topics import (
    HOSTING_ASSIGNMENTS,
    HUMAN_LOOP_ACTIVATIONS,
    INGEST,
    INGEST_RESULTS,
    REPLY_PRESENCE,
    WORKER_HEARTBEATS,
    model_group,
    model_key,
    model_request_topic,
    reply_topic,
)
from loupe_local.stack import OWN_BROKER_ENV, Stack

PROJECT, VERSION = "bench", "1"
MIB = 1024 * 1024
# Image sides for the masks: a 100-500 KB JPEG or PNG is roughly 1-3 megapixels.
SIDES = ((1024, 768), (1280, 960), (1600, 1200), (2048, 1536))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs."""
    if len(xs) < 2:
        return float("nan")
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else float("nan")


def mask_png(size: tuple[int, int], seed: int) -> bytes:
    """A mask as the worker draws it: the image's size, background colour, one anomaly's pixels."""
    rng = random.Random(seed)  # noqa: S311 - shapes, not secrets
    image = Image.new("RGB", size, (0, 0, 0))
    w, h = size
    x, y = rng.randrange(w // 2), rng.randrange(h // 2)
    ImageDraw.Draw(image).ellipse((x, y, x + w // 8, y + h // 10), fill=(35, 192, 115))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False, compress_level=6)
    return out.getvalue()


def detection(mask: bytes, rng: random.Random) -> dict:
    return {
        "Source": {"Type": "direct"},
        "IsAnomalous": True,
        "Confidence": round(rng.random(), 6),
        "Anomalies": [
            {"Name": "background", "PixelAnomaly": {"TotalPercentageArea": 0.99, "Color": "#000000"}},
            {"Name": "scratch", "PixelAnomaly": {"TotalPercentageArea": 0.01, "Color": "#23C073"}},
        ],
        "AnomalyMask": base64.b64encode(mask).decode(),
    }


class Sent:
    """Records and bytes (key, value and headers) sent, by kind."""

    def __init__(self) -> None:
        self.by_kind: dict[str, list[int]] = {}

    def add(self, kind: str, value: bytes, key: bytes | None = None, headers: list | None = None) -> None:
        size = len(value) + len(key or b"") + sum(len(k) + len(v) for k, v in headers or ())
        entry = self.by_kind.setdefault(kind, [0, 0])
        entry[0] += 1
        entry[1] += size

    @property
    def records(self) -> int:
        return sum(r for r, _ in self.by_kind.values())

    @property
    def bytes(self) -> int:
        return sum(b for _, b in self.by_kind.values())


class Load:
    def __init__(self, settings: Settings, args: argparse.Namespace, blobs: LocalBlobStore) -> None:
        self.settings, self.args, self.blobs = settings, args, blobs
        self.sent = Sent()
        self.requests = model_request_topic(PROJECT, VERSION)
        self.replies = reply_topic("gateway", "bench")
        self.rng = random.Random(0)  # noqa: S311 - sizes, not secrets
        self.masks = [mask_png(side, i) for i, side in enumerate(SIDES)]
        self.pending: dict[str, float] = {}  # correlation id -> sent at
        self.round_trips: list[float] = []
        self.claimed = 0
        self.late = 0
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, max_request_size=settings.kafka_max_message_bytes,
            linger_ms=0)

    def image(self) -> bytes:
        low, high = self.args.image_kb
        return os.urandom(self.rng.randint(low * 1000, high * 1000))

    async def send(self, kind: str, topic: str, value: bytes, *, key: bytes | None = None,
                   headers: list | None = None, partition: int | None = None):
        record = await self.producer.send_and_wait(topic, value, key=key, headers=headers,
                                                   partition=partition)
        self.sent.add(kind, value, key, headers)
        return record

    async def paced(self, rate: float, action) -> None:
        """Call `action` `rate` times a second, without bursts after a stall."""
        if rate <= 0:
            return
        period, due = 1 / rate, time.monotonic()
        while True:
            due += period
            delay = due - time.monotonic()
            if delay < -1:
                self.late += 1
                due = time.monotonic()
            await asyncio.sleep(max(delay, 0))
            try:
                await action()
            except Exception as exc:  # noqa: BLE001 - shown; the load goes on
                print(f"  {action.__name__} failed: {exc!r}", file=sys.stderr)

    # --- DetectAnomalies ------------------------------------------------------------------------

    async def detect(self) -> None:
        data = self.image()
        correlation = str(uuid.uuid4())
        headers = {H_REQUEST_ID: str(uuid.uuid4()), H_CONTENT_TYPE: "image/jpeg", H_MASK: "1", H_HEATMAP: "0",
                   H_CORRELATION: correlation, H_REPLY_TO: self.replies}
        value = data
        self.pending[correlation] = time.perf_counter()  # the round trip includes the claim check's write
        if len(data) > self.settings.claim_check_bytes:
            blob = f"transfer/detect/{uuid.uuid4().hex}"
            await self.blobs.put(blob, data)
            value, headers[H_BLOB] = b"", blob
            self.claimed += 1
        await self.send("detect request", self.requests, value,
                        headers=[(k, v.encode()) for k, v in headers.items()])

    async def unit(self) -> None:
        """The model's inference unit: answer, commit after the replies are acknowledged, then
        remove the claim checks."""
        consumer = AIOKafkaConsumer(
            self.requests, bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=model_group(PROJECT, VERSION), auto_offset_reset="earliest", enable_auto_commit=False,
            fetch_max_wait_ms=100,
            max_partition_fetch_bytes=self.settings.kafka_max_message_bytes + 65536)
        await consumer.start()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=1000, max_records=16)
                done = []
                for records in batch.values():
                    for record in records:
                        headers = {k: v.decode() for k, v in record.headers or ()}
                        blob = headers.get(H_BLOB)
                        data = await self.blobs.get(blob) if blob else record.value
                        mask = self.masks[len(data) % len(self.masks)]
                        reply = Reply.success({"DetectAnomalyResult": detection(mask, self.rng),
                                               "Score": 0.731, "Threshold": 0.5})
                        reply.elapsed_ms = 41.2
                        await self.send("detect reply", headers[H_REPLY_TO], reply.model_dump_json().encode(),
                                        headers=[(H_CORRELATION, headers[H_CORRELATION].encode()),
                                                 ("content-type", b"application/json")])
                        if blob:
                            done.append(blob)
                if batch:
                    await consumer.commit()
                    for blob in done:
                        await self.blobs.delete(blob)
        finally:
            await consumer.stop()

    async def gateway(self) -> None:
        """The gateway's reply reader: an assigned partition, no group."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, fetch_max_wait_ms=100,
                                    max_partition_fetch_bytes=self.settings.kafka_max_message_bytes + 65536)
        await consumer.start()
        tp = TopicPartition(self.replies, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        try:
            while True:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for record in batch.get(tp, []):
                    correlation = dict(record.headers or ()).get(H_CORRELATION, b"").decode()
                    started = self.pending.pop(correlation, None)
                    if started is not None:
                        self.round_trips.append(time.perf_counter() - started)
        finally:
            await consumer.stop()

    # --- ingest ---------------------------------------------------------------------------------

    async def ingest_one(self) -> None:
        image_id = uuid.uuid4().hex
        headers = [(ingest.H_PROJECT, PROJECT.encode()), (ingest.H_MODEL_VERSION, VERSION.encode()),
                   (ingest.H_IMAGE_ID, image_id.encode()), (ingest.H_CONTENT_TYPE, b"image/jpeg")]
        record = await self.send("ingest image (users')", INGEST, self.image(), headers=headers)
        position = ingest.Position(INGEST, record.partition, record.offset)
        mask = self.masks[record.offset % len(self.masks)]
        envelope = ingest.result_envelope(position, image_id=image_id, project_name=PROJECT,
                                          model_version=VERSION, detection=detection(mask, self.rng))
        envelope["worker"] = "bench-worker"
        await self.send("ingest result", INGEST_RESULTS, json.dumps(envelope).encode(), key=image_id.encode(),
                        headers=[("content-type", b"application/json")], partition=record.partition)

    # --- what Loupe sends whatever the load ---------------------------------------------------

    async def heartbeat(self) -> None:
        now = datetime.now(UTC)
        loaded = ModelLoad(state="ready", serving=True, busy=0.12)
        beat = WorkerHeartbeat(worker_id=self.worker_id, sent_at=now, started_at=self.started_at, threads=2,
                               models={model_key(PROJECT, VERSION): loaded})
        await self.send("heartbeat", WORKER_HEARTBEATS, beat.model_dump_json().encode(),
                        key=self.worker_id.encode())

    async def assignments(self) -> None:
        self.generation += 1
        key = model_key(PROJECT, VERSION)
        artifacts = {name: f"models/{PROJECT}/{VERSION}/{name}" for name in ("model.onnx", "model.json")}
        table = AssignmentTable(
            generation=self.generation, sent_at=datetime.now(UTC),
            models={key: HostedModel(project_name=PROJECT, model_version=VERSION, status="HOSTED",
                                     topic=self.requests, artifacts=artifacts)},
            workers={self.worker_id: [key]})
        await self.send("assignment table", HOSTING_ASSIGNMENTS, table.model_dump_json().encode())

    async def activations(self) -> None:
        self.generation += 1
        table = ActivationTable(generation=self.generation, sent_at=datetime.now(UTC))
        await self.send("activation table", HUMAN_LOOP_ACTIVATIONS, table.model_dump_json().encode())

    async def presence(self) -> None:
        for role in ("gateway", "hosting", "training", "human-loop"):
            name = "bench" if role == "gateway" else f"{role}-1"
            topics = [self.replies] if role == "gateway" else [reply_topic(role, name)]
            announcement = ReplyTopicsInUse(process=f"{role}-{name}", topics=topics)
            await self.send("presence", REPLY_PRESENCE, announcement.model_dump_json().encode())

    async def run(self) -> list[asyncio.Task]:
        self.worker_id, self.started_at, self.generation = str(uuid.uuid4()), datetime.now(UTC), 0
        await self.producer.start()
        s = self.settings
        loops = [
            self.unit(), self.gateway(),
            self.paced(self.args.rate, self.detect),
            self.paced(self.args.ingest_rate, self.ingest_one),
            self.paced(1 / s.heartbeat_seconds, self.heartbeat),
            self.paced(1 / s.heartbeat_seconds, self.assignments),
            self.paced(1 / s.activation_table_seconds, self.activations),
            self.paced(6 / s.reply_topic_grace_seconds, self.presence),
        ]
        return [asyncio.create_task(loop) for loop in loops]


async def first_offsets(bootstrap: str, topics: list[str]) -> dict[str, tuple[int, int]]:
    """topic -> (sum of first offsets, sum of end offsets) over its partitions."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        found = {}
        for topic in topics:
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            begins, ends = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
            found[topic] = (sum(begins.values()), sum(ends.values()))
        return found
    finally:
        await consumer.stop()


async def configs_of(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        return {entry[0]: entry[1] for entry in response[0].resources[0][4]}
    finally:
        await admin.close()


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


async def measure(stack: Stack, args: argparse.Namespace) -> None:
    pid = stack.processes["kafka"].pid
    settings = Settings(_env_file=None, kafka_bootstrap=stack.kafka_bootstrap, data_dir=stack.data_dir,
                        claim_check_bytes=args.claim_check_bytes)
    load = Load(settings, args, LocalBlobStore(stack.data_dir / "blobs"))
    await ensure_topics(settings, [(load.requests, settings.topic_partitions)], extra=[(load.replies, 1)])
    low, high = args.image_kb
    print(f"broker pid {pid}, {stack.kafka_bootstrap}; claim check above {settings.claim_check_bytes} B; "
          f"{args.rate}/s DetectAnomalies, {args.ingest_rate}/s ingest, images {low}-{high} KB; "
          f"{args.minutes} min")
    print(f"{load.requests}: {await configs_of(stack.kafka_bootstrap, load.requests)}")
    samples: list[tuple[float, float]] = [(0.0, rss_mib(pid))]
    print(f"{'minute':>7} {'RSS MiB':>9} {'records':>9} {'MiB sent':>9} {'replies':>8}")
    print(f"{0:>7.1f} {samples[0][1]:>9.1f} {0:>9} {0:>9.1f} {0:>8}")
    tasks = await load.run()
    started = time.monotonic()
    try:
        end = started + args.minutes * 60
        while (now := time.monotonic()) < end:
            await asyncio.sleep(min(args.sample_seconds, end - now))
            minute = (time.monotonic() - started) / 60
            samples.append((minute, rss_mib(pid)))
            sent = load.sent
            print(f"{minute:>7.1f} {samples[-1][1]:>9.1f} {sent.records:>9} {sent.bytes / MIB:>9.1f} "
                  f"{len(load.round_trips):>8}", flush=True)
            for task in tasks:
                if task.done() and task.exception():
                    raise task.exception()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await load.producer.stop()

    xs, ys = [m for m, _ in samples], [r for _, r in samples]
    grown = ys[-1] - ys[0]
    sent_mib = load.sent.bytes / MIB
    print(f"\nRSS {ys[0]:.1f} -> {ys[-1]:.1f} MiB (+{grown:.1f}); slope {slope(xs, ys):.2f} MiB/min "
          f"({slope(xs, ys) * 60:.0f} MiB/hour); {load.sent.records} records, {sent_mib:.1f} MiB sent; "
          f"RSS growth / MiB sent = {grown / sent_mib if sent_mib else float('nan'):.2f}")
    print(f"{'kind':<22} {'records':>9} {'MiB':>9} {'bytes/record':>13} {'MiB/hour':>9}")
    hours = xs[-1] / 60
    for kind, (records, size) in sorted(load.sent.by_kind.items(), key=lambda kv: -kv[1][1]):
        per_hour = size / MIB / hours
        print(f"{kind:<22} {records:>9} {size / MIB:>9.2f} {size / records:>13.0f} {per_hour:>9.2f}")
    if load.round_trips:
        trips = sorted(load.round_trips)
        print(f"request -> reply: {len(trips)} replies, p50 {trips[len(trips) // 2] * 1000:.1f} ms, "
              f"p99 {trips[int(len(trips) * 0.99)] * 1000:.1f} ms; {load.claimed} by claim check; "
              f"blob store holds {dir_bytes(stack.data_dir / 'blobs') / MIB:.2f} MiB at the end")
    if load.late:
        print(f"the load fell behind its rate {load.late} times (the machine was busy)")
    topics = [load.requests, load.replies, INGEST, INGEST_RESULTS, WORKER_HEARTBEATS, HOSTING_ASSIGNMENTS,
              HUMAN_LOOP_ACTIVATIONS, REPLY_PRESENCE]
    print("first offset / end offset per topic (first > 0 only if the broker dropped records):")
    for topic, (first, last) in (await first_offsets(stack.kafka_bootstrap, topics)).items():
        print(f"  {topic:<40} {first:>7} / {last:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=1.0, help="DetectAnomalies requests per second")
    parser.add_argument("--ingest-rate", type=float, default=0.2, help="images per second on loupe.ingest")
    parser.add_argument("--claim-check-bytes", type=int,
                        help="images above this travel by claim check (default: LOUPE_CLAIM_CHECK_BYTES, "
                        "else what `make run` gives its services with its own broker: "
                        "loupe_local.stack.OWN_BROKER_ENV; the services' own default is 524288)")
    parser.add_argument("--image-kb", type=int, nargs=2, default=(100, 500), metavar=("MIN", "MAX"))
    parser.add_argument("--sample-seconds", type=float, default=60)
    parser.add_argument("--data-dir", type=Path, help="keep the broker's log and the blobs here")
    args = parser.parse_args()
    if args.claim_check_bytes is None:
        args.claim_check_bytes = int(os.environ.get("LOUPE_CLAIM_CHECK_BYTES")
                                     or OWN_BROKER_ENV["LOUPE_CLAIM_CHECK_BYTES"])

    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack.on_free_ports(args.data_dir or Path(tmp))
        stack.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            stack.start_broker()  # the broker and the topic catalogue exactly as `make run` starts them
            stack.create_topics()
            asyncio.run(measure(stack, args))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
