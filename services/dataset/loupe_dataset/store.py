"""The dataset service's state: its MongoDB collections and their indexes."""

from __future__ import annotations

from dataclasses import dataclass

from loupe_common import idempotency
from loupe_common.blobs import BlobStore
from loupe_common.db import Database
from loupe_common.settings import Settings

from .sources import SourceReader


@dataclass
class DatasetState:
    settings: Settings
    db: Database
    blobs: BlobStore
    sources: SourceReader

    @property
    def projects(self):  # {_id: name, arn, created_at, tags: {key: value}}
        return self.db["projects"]

    @property
    def datasets(self):  # {_id: "<project>/<type>", status, stats, job_id, ...}
        return self.db["datasets"]

    @property
    def entries(self):  # one JSON Line each: {project_name, dataset_type, source_ref, line, label, ...}
        return self.db["entries"]

    @property
    def project_models(self):  # {_id: "<project>/<version>"}: learnt from loupe.model.events
        return self.db["project_models"]


async def ensure_indexes(state: DatasetState) -> None:
    await state.datasets.create_index("project_name")
    await state.entries.create_index(
        [("project_name", 1), ("dataset_type", 1), ("source_ref", 1)], unique=True
    )
    await state.entries.create_index([("project_name", 1), ("dataset_type", 1), ("_id", 1)])
    await state.entries.create_index([("project_name", 1), ("dataset_type", 1), ("blob_key", 1)])
    await state.project_models.create_index("project_name")
    await idempotency.ensure_indexes(state.db)


def dataset_id(project_name: str, dataset_type: str) -> str:
    return f"{project_name}/{dataset_type}"
