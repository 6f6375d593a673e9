"""The topic catalogue: every Kafka topic Loupe uses, who writes it and who reads it."""

from __future__ import annotations

from dataclasses import dataclass, field

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
MIB = 1024 * 1024


@dataclass(frozen=True)
class Retention:
    """How long a topic keeps its records, as Kafka topic configs (cleanup.policy=delete).

    Kafka deletes whole segments and never the active one, so a record goes between `ms` and
    `ms + segment_ms` after it was written (with Kafka's default segment.ms of 7 days, a
    15-minute topic would keep its records for a week). `bytes` bounds each partition (-1: no
    bound); it acts only because `segment_bytes` is well below it.

    No topic is compacted: the latest-value tables (assignments, heartbeats, activations, access
    keys, presence) are published without a key, which a compacted topic refuses on Kafka, and
    their readers start at the end anyway, so a short time-based retention serves them.

    The local broker (Tansu 0.6, memory storage) stores these configs and reports them, but never
    drops a record (see tests/benchmarks/bench_broker_memory.py): they act on a real Kafka only."""

    ms: int
    segment_ms: int
    segment_bytes: int
    bytes: int = -1

    def configs(self) -> dict[str, str]:
        return {
            "cleanup.policy": "delete",
            "retention.ms": str(self.ms),
            "retention.bytes": str(self.bytes),
            "segment.ms": str(self.segment_ms),
            "segment.bytes": str(self.segment_bytes),
        }


# Commands, jobs and events: a consumer group commits only after its work is done, so a crash (or
# a service down for days) replays from the committed offset; a week is Kafka's own default.
DURABLE = Retention(ms=7 * DAY_MS, segment_ms=HOUR_MS, segment_bytes=64 * MIB)
# The streaming path (users' images in, results out): a day to catch up after an outage, and a
# bound per partition, as the images are large.
STREAM = Retention(ms=DAY_MS, segment_ms=HOUR_MS, segment_bytes=64 * MIB, bytes=1024 * MIB)
# Requests someone awaits (DetectAnomalies, tagging: the caller gives up after
# detect_timeout_seconds): long enough for a worker's group to replay them after a crash, no longer.
REQUESTS = Retention(ms=15 * MINUTE_MS, segment_ms=MINUTE_MS, segment_bytes=16 * MIB, bytes=256 * MIB)
# A process's replies: read within its request timeout.
REPLIES = Retention(ms=15 * MINUTE_MS, segment_ms=MINUTE_MS, segment_bytes=16 * MIB, bytes=256 * MIB)
# Tables and liveness re-sent every few seconds, read from the end: only the newest record counts.
TABLES = Retention(ms=10 * MINUTE_MS, segment_ms=MINUTE_MS, segment_bytes=8 * MIB, bytes=64 * MIB)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    producers: str
    consumers: str
    carries: str
    partitioned: bool = True  # False: a single partition keeps a total order
    retention: Retention = field(kw_only=True)  # every topic states it (see Retention)


DATASET_COMMANDS = "loupe.dataset.commands"
DATASET_JOBS = "loupe.dataset.jobs"
MODEL_EVENTS = "loupe.model.events"
TRAINING_COMMANDS = "loupe.training.commands"
TRAINING_JOBS = "loupe.training.jobs"
PACKAGING_JOBS = "loupe.packaging.jobs"
HOSTING_COMMANDS = "loupe.hosting.commands"
HOSTING_ASSIGNMENTS = "loupe.hosting.assignments"
WORKER_HEARTBEATS = "loupe.inference.heartbeats"
INGEST = "loupe.ingest"
INGEST_RESULTS = "loupe.ingest.results"
TAGGING_REQUESTS = "loupe.tagging.requests"
HUMAN_LOOP_COMMANDS = "loupe.humanloop.commands"
HUMAN_LOOP_EVENTS = "loupe.humanloop.events"
HUMAN_LOOP_ACTIVATIONS = "loupe.humanloop.activations"
ACCESS_KEYS = "loupe.access.keys"
REPLY_PREFIX = "loupe.replies."
REPLY_PRESENCE = "loupe.presence"
MODEL_REQUESTS_PREFIX = "loupe.inference.requests."

CATALOGUE: tuple[TopicSpec, ...] = (
    TopicSpec(
        DATASET_COMMANDS,
        producers="gateway",
        consumers="dataset (group loupe-dataset)",
        carries="project, dataset, entry, tag and upload commands; key = project name, so one "
        "project's commands are handled in order",
        retention=DURABLE,
    ),
    TopicSpec(
        DATASET_JOBS,
        producers="dataset",
        consumers="dataset (group loupe-dataset-jobs)",
        carries="long dataset work (manifest import, entry update, dataset deletion); offsets are "
        "committed only after the job finished, so a crash replays it",
        retention=DURABLE,
    ),
    TopicSpec(
        TRAINING_COMMANDS,
        producers="gateway",
        consumers="training (group loupe-training)",
        carries="model version commands: create, describe, list, delete, tags, artifacts; "
        "key = project name",
        retention=DURABLE,
    ),
    TopicSpec(
        TRAINING_JOBS,
        producers="training",
        consumers="training (group loupe-training-jobs)",
        carries="training runs; committed only when the model version is final, so a crash "
        "replays the run",
        retention=DURABLE,
    ),
    TopicSpec(
        PACKAGING_JOBS,
        producers="training",
        consumers="training (group loupe-training-packaging)",
        carries="model packaging jobs (edge bundles as Greengrass components); committed only when "
        "the job is final, so a crash replays it",
        retention=DURABLE,
    ),
    TopicSpec(
        MODEL_EVENTS,
        producers="training",
        consumers="dataset (group loupe-dataset-models)",
        carries="model version created/deleted, so DeleteProject can refuse while models exist",
        retention=DURABLE,
    ),
    TopicSpec(
        HOSTING_COMMANDS,
        producers="gateway",
        consumers="hosting (group loupe-hosting)",
        carries="StartModel, StopModel, and deployment lookups for DetectAnomalies; key = project",
        retention=DURABLE,
    ),
    TopicSpec(
        HOSTING_ASSIGNMENTS,
        producers="hosting",
        consumers="inference workers and gateways (no group: every process reads every table)",
        carries="the whole assignment table (which worker serves which model version, and which "
        "versions are hosted), re-sent every second so a new reader is current within a second",
        partitioned=False,
        retention=TABLES,
    ),
    TopicSpec(
        WORKER_HEARTBEATS,
        producers="inference workers",
        consumers="hosting (no group)",
        carries="each worker's liveness and the state of every model it loaded (loading, ready, failed)",
        partitioned=False,
        retention=TABLES,
    ),
    TopicSpec(
        INGEST,
        producers="users' producers, `loupe ingest`",
        consumers="inference workers (group loupe-ingest)",
        carries="images to score: raw bytes with loupe-* headers, or a JSON envelope (see "
        "loupe_common.ingest); committed only after the image's result is published",
        retention=STREAM,
    ),
    TopicSpec(
        INGEST_RESULTS,
        producers="inference workers",
        consumers="users' consumers, `loupe ingest`",
        carries="one AILabTools envelope per ingest message, in the same partition number as the "
        "image it answers (the worker reads it back to suppress duplicates after a crash)",
        retention=STREAM,
    ),
    TopicSpec(
        TAGGING_REQUESTS,
        producers="gateway (Image Recognition v1.0 / v2 tagging)",
        consumers="inference workers (group loupe-tagging: every worker serves the tagging models)",
        carries="images to tag (bytes + headers, or a claim-check blob key); reply to the gateway",
        retention=REQUESTS,
    ),
    TopicSpec(
        HUMAN_LOOP_COMMANDS,
        producers="gateway (A2I runtime, flow definitions, reviewers, review page), inference workers "
        "(loops started by activation conditions)",
        consumers="human-loop (group loupe-human-loop)",
        carries="human loop, flow definition and review commands; key = loop or flow definition name",
        retention=DURABLE,
    ),
    TopicSpec(
        HUMAN_LOOP_ACTIVATIONS,
        producers="human-loop",
        consumers="inference workers (no group: every worker reads every table)",
        carries="the activation table (which flow definition reviews which model's results, on which "
        "conditions), re-sent every few seconds and on change",
        partitioned=False,
        retention=TABLES,
    ),
    TopicSpec(
        ACCESS_KEYS,
        producers="human-loop",
        consumers="gateways (no group: every gateway reads every table)",
        carries="the access key table (key ids, roles, status, secrets sealed under the root secret), "
        "re-sent every few seconds and on change",
        partitioned=False,
        retention=TABLES,
    ),
    TopicSpec(
        HUMAN_LOOP_EVENTS,
        producers="human-loop",
        consumers="users' consumers",
        carries="every human loop status change (AILabTools envelope); key = loop name",
        retention=DURABLE,
    ),
    TopicSpec(
        REPLY_PRESENCE,
        producers="every process with a reply topic (its topic keeper)",
        consumers="hosting (no group: the reply-topic janitor)",
        carries="which reply topics are in use, re-sent by each living process; the janitor deletes "
        "reply topics nobody announced for LOUPE_REPLY_TOPIC_GRACE_SECONDS (a gateway pod killed outright)",
        partitioned=False,
        retention=TABLES,
    ),
)

# Every hosted model version has its own request topic (created by the hosting service, with
# topic_partitions partitions) and one consumer group whose members are its inference units.
# Those topics and the reply topics are created at run time, by name: their retention goes by prefix.
DYNAMIC_RETENTION: tuple[tuple[str, Retention], ...] = (
    (MODEL_REQUESTS_PREFIX, REQUESTS),
    (REPLY_PREFIX, REPLIES),
)
_RETENTION_BY_NAME = {spec.name: spec.retention for spec in CATALOGUE}


def retention_of(topic: str) -> Retention | None:
    """The retention of a Loupe topic: the catalogue's, or its prefix's; None for any other topic
    (e.g. a test's), which gets the broker's defaults."""
    if topic in _RETENTION_BY_NAME:
        return _RETENTION_BY_NAME[topic]
    return next((retention for prefix, retention in DYNAMIC_RETENTION if topic.startswith(prefix)), None)


def reply_topic(role: str, process_name: str) -> str:
    """Each process that sends requests (gateway, hosting, training, human loop) reads replies from
    a topic of its own; a process with a stable name keeps it across restarts."""
    return f"{REPLY_PREFIX}{role}-{process_name}"


def model_key(project_name: str, model_version: str | int) -> str:
    return f"{project_name}:{model_version}"


def model_request_topic(project_name: str, model_version: str | int) -> str:
    """DetectAnomalies requests of one model version; Kafka caps topic names at 249 characters,
    so a very long project name is replaced by its digest."""
    name = f"{MODEL_REQUESTS_PREFIX}{project_name}.{model_version}"
    if len(name) <= 249:
        return name
    import hashlib

    digest = hashlib.sha256(project_name.encode()).hexdigest()[:32]
    return f"{MODEL_REQUESTS_PREFIX}{project_name[:150]}-{digest}.{model_version}"


def model_group(project_name: str, model_version: str | int) -> str:
    topic = model_request_topic(project_name, model_version)
    return "loupe-units-" + topic.removeprefix(MODEL_REQUESTS_PREFIX)
