"""The topic catalogue: every Kafka topic Loupe uses, who writes it and who reads it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicSpec:
    name: str
    producers: str
    consumers: str
    carries: str
    partitioned: bool = True  # False: a single partition keeps a total order


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
    ),
    TopicSpec(
        DATASET_JOBS,
        producers="dataset",
        consumers="dataset (group loupe-dataset-jobs)",
        carries="long dataset work (manifest import, entry update, dataset deletion); offsets are "
        "committed only after the job finished, so a crash replays it",
    ),
    TopicSpec(
        TRAINING_COMMANDS,
        producers="gateway",
        consumers="training (group loupe-training)",
        carries="model version commands: create, describe, list, delete, tags, artifacts; "
        "key = project name",
    ),
    TopicSpec(
        TRAINING_JOBS,
        producers="training",
        consumers="training (group loupe-training-jobs)",
        carries="training runs; committed only when the model version is final, so a crash "
        "replays the run",
    ),
    TopicSpec(
        PACKAGING_JOBS,
        producers="training",
        consumers="training (group loupe-training-packaging)",
        carries="model packaging jobs (edge bundles as Greengrass components); committed only when "
        "the job is final, so a crash replays it",
    ),
    TopicSpec(
        MODEL_EVENTS,
        producers="training",
        consumers="dataset (group loupe-dataset-models)",
        carries="model version created/deleted, so DeleteProject can refuse while models exist",
    ),
    TopicSpec(
        HOSTING_COMMANDS,
        producers="gateway",
        consumers="hosting (group loupe-hosting)",
        carries="StartModel, StopModel, and deployment lookups for DetectAnomalies; key = project",
    ),
    TopicSpec(
        HOSTING_ASSIGNMENTS,
        producers="hosting",
        consumers="inference workers and gateways (no group: every process reads every table)",
        carries="the whole assignment table (which worker serves which model version, and which "
        "versions are hosted), re-sent every second so a new reader is current within a second",
        partitioned=False,
    ),
    TopicSpec(
        WORKER_HEARTBEATS,
        producers="inference workers",
        consumers="hosting (no group)",
        carries="each worker's liveness and the state of every model it loaded (loading, ready, failed)",
        partitioned=False,
    ),
    TopicSpec(
        INGEST,
        producers="users' producers, `loupe ingest`",
        consumers="inference workers (group loupe-ingest)",
        carries="images to score: raw bytes with loupe-* headers, or a JSON envelope (see "
        "loupe_common.ingest); committed only after the image's result is published",
    ),
    TopicSpec(
        INGEST_RESULTS,
        producers="inference workers",
        consumers="users' consumers, `loupe ingest`",
        carries="one AILabTools envelope per ingest message, in the same partition number as the "
        "image it answers (the worker reads it back to suppress duplicates after a crash)",
    ),
    TopicSpec(
        TAGGING_REQUESTS,
        producers="gateway (Image Recognition v1.0 / v2 tagging)",
        consumers="inference workers (group loupe-tagging: every worker serves the tagging models)",
        carries="images to tag (bytes + headers, or a claim-check blob key); reply to the gateway",
    ),
    TopicSpec(
        HUMAN_LOOP_COMMANDS,
        producers="gateway (A2I runtime, flow definitions, reviewers, review page), inference workers "
        "(loops started by activation conditions)",
        consumers="human-loop (group loupe-human-loop)",
        carries="human loop, flow definition and review commands; key = loop or flow definition name",
    ),
    TopicSpec(
        HUMAN_LOOP_ACTIVATIONS,
        producers="human-loop",
        consumers="inference workers (no group: every worker reads every table)",
        carries="the activation table (which flow definition reviews which model's results, on which "
        "conditions), re-sent every few seconds and on change",
        partitioned=False,
    ),
    TopicSpec(
        ACCESS_KEYS,
        producers="human-loop",
        consumers="gateways (no group: every gateway reads every table)",
        carries="the access key table (key ids, roles, status, secrets sealed under the root secret), "
        "re-sent every few seconds and on change",
        partitioned=False,
    ),
    TopicSpec(
        HUMAN_LOOP_EVENTS,
        producers="human-loop",
        consumers="users' consumers",
        carries="every human loop status change (AILabTools envelope); key = loop name",
    ),
    TopicSpec(
        REPLY_PRESENCE,
        producers="every process with a reply topic (its topic keeper)",
        consumers="hosting (no group: the reply-topic janitor)",
        carries="which reply topics are in use, re-sent by each living process; the janitor deletes "
        "reply topics nobody announced for LOUPE_REPLY_TOPIC_GRACE_SECONDS (a gateway pod killed outright)",
        partitioned=False,
    ),
)

# Every hosted model version has its own request topic (created by the hosting service, with
# topic_partitions partitions) and one consumer group whose members are its inference units.


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
    return "loupe-units-" + model_request_topic(project_name, model_version).removeprefix(MODEL_REQUESTS_PREFIX)
