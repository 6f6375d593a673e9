"""The training service's state: model versions (`models`), per-project version counters
(`model_counters`), model packaging jobs (`packaging_jobs`), and client-token records."""

from __future__ import annotations

from dataclasses import dataclass

from loupe_common import idempotency
from loupe_common.blobs import BlobStore
from loupe_common.buckets import BucketRoot, S3Buckets
from loupe_common.db import Database
from loupe_common.kafka import RequestClient
from loupe_common.settings import Settings


@dataclass
class TrainingState:
    settings: Settings
    db: Database
    blobs: BlobStore
    buckets: BucketRoot | S3Buckets
    datasets: RequestClient  # asks the dataset service (it owns datasets)

    @property
    def models(self):  # {_id: "<project>/<version>", project_name, version, status, ...}
        return self.db["models"]

    @property
    def counters(self):  # {_id: project_name, last_version}
        return self.db["model_counters"]

    # {_id: "<project>/<job name>", job_name, model_version, configuration, status, ...}
    @property
    def packaging_jobs(self):
        return self.db["packaging_jobs"]


async def ensure_indexes(state: TrainingState) -> None:
    await state.models.create_index([("project_name", 1), ("version", 1)], unique=True)
    await state.models.create_index("status")
    await state.packaging_jobs.create_index([("project_name", 1), ("_id", 1)])
    await state.packaging_jobs.create_index("status")
    await idempotency.ensure_indexes(state.db)


def model_id(project_name: str, version: int | str) -> str:
    return f"{project_name}/{version}"
