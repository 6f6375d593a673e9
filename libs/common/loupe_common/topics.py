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
REPLY_PREFIX = "loupe.replies."

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
        MODEL_EVENTS,
        producers="training",
        consumers="dataset (group loupe-dataset-models)",
        carries="model version created/deleted, so DeleteProject can refuse while models exist",
    ),
)


def reply_topic(instance_id: str) -> str:
    """Each gateway instance reads replies from a topic of its own."""
    return f"{REPLY_PREFIX}{instance_id}"
