"""Contracts of the dataset service: the commands it answers (topic loupe.dataset.commands), the
jobs it queues for itself (loupe.dataset.jobs) and the model events it follows (loupe.model.events)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from .lookout import (
    AnomalyClass,
    DatasetSource,
    DatasetType,
    InputS3Object,
    MaxResults,
    PaginationToken,
    ProjectName,
    SourceRefContains,
    Tag,
    TagKey,
)
from .messages import Command

MAX_REMOVALS = 100  # entries one RemoveDatasetEntries takes out (one page of the console's grid)

# --- commands ---------------------------------------------------------------------------------


class CreateProject(Command):
    operation: Literal["CreateProject"] = "CreateProject"
    project_name: ProjectName


class DescribeProject(Command):
    operation: Literal["DescribeProject"] = "DescribeProject"
    project_name: ProjectName


class ListProjects(Command):
    operation: Literal["ListProjects"] = "ListProjects"
    max_results: MaxResults = 100
    next_token: PaginationToken | None = None


class DeleteProject(Command):
    operation: Literal["DeleteProject"] = "DeleteProject"
    project_name: ProjectName


class CreateDataset(Command):
    operation: Literal["CreateDataset"] = "CreateDataset"
    project_name: ProjectName
    dataset_type: DatasetType
    dataset_source: DatasetSource | None = None


class DescribeDataset(Command):
    operation: Literal["DescribeDataset"] = "DescribeDataset"
    project_name: ProjectName
    dataset_type: DatasetType


class DeleteDataset(Command):
    operation: Literal["DeleteDataset"] = "DeleteDataset"
    project_name: ProjectName
    dataset_type: DatasetType


class ListDatasetEntries(Command):
    operation: Literal["ListDatasetEntries"] = "ListDatasetEntries"
    project_name: ProjectName
    dataset_type: DatasetType
    labeled: bool | None = None
    anomaly_class: AnomalyClass | None = None
    created_before: datetime | None = None
    created_after: datetime | None = None
    source_ref_contains: SourceRefContains | None = None
    max_results: MaxResults = 100
    next_token: PaginationToken | None = None
    # Loupe-native (the console's grid): each entry also as "Entries" [{source_ref, label, line, image,
    # mask, width, height, anomaly_classes, note, created_at}], image and mask as dataset file names.
    detail: bool = False


class UpdateDatasetEntries(Command):
    operation: Literal["UpdateDatasetEntries"] = "UpdateDatasetEntries"
    project_name: ProjectName
    dataset_type: DatasetType
    changes_key: str = Field(description="Blob key of the decoded JSON Lines (claim check)")
    changes_sha256: str = Field(description="Identifies the changes for idempotency")


class RemoveDatasetEntries(Command):
    """Loupe-native (Lookout has no such call): take entries out of a dataset by source-ref; their
    images leave blob storage when no other entry uses them."""

    operation: Literal["RemoveDatasetEntries"] = "RemoveDatasetEntries"
    project_name: ProjectName
    dataset_type: DatasetType
    source_refs: list[Annotated[str, StringConstraints(min_length=1, max_length=2048)]] = Field(
        min_length=1, max_length=MAX_REMOVALS)


class TagProject(Command):
    operation: Literal["TagProject"] = "TagProject"
    project_name: ProjectName
    tags: list[Tag]


class UntagProject(Command):
    operation: Literal["UntagProject"] = "UntagProject"
    project_name: ProjectName
    tag_keys: list[TagKey]


class ListProjectTags(Command):
    operation: Literal["ListProjectTags"] = "ListProjectTags"
    project_name: ProjectName


class StoreUpload(Command):
    """An image uploaded through the Loupe-native route, waiting in blob storage under upload_key."""

    operation: Literal["StoreUpload"] = "StoreUpload"
    project_name: ProjectName
    upload_key: str
    file_name: str | None = None


class SummarizeDatasets(Command):
    """Service-to-service (training): the project's datasets with status and image stats."""

    operation: Literal["SummarizeDatasets"] = "SummarizeDatasets"
    project_name: ProjectName


class ExportEntries(Command):
    """Service-to-service (training): snapshot the labelled entries of a dataset into blob storage
    as JSON Lines ({source_ref, label, blob_key, mask_key, width, height}); replies {key, count}."""

    operation: Literal["ExportEntries"] = "ExportEntries"
    project_name: ProjectName
    dataset_type: DatasetType
    export_key: str


DatasetCommand = Annotated[
    CreateProject
    | DescribeProject
    | ListProjects
    | DeleteProject
    | CreateDataset
    | DescribeDataset
    | DeleteDataset
    | ListDatasetEntries
    | UpdateDatasetEntries
    | RemoveDatasetEntries
    | TagProject
    | UntagProject
    | ListProjectTags
    | StoreUpload
    | SummarizeDatasets
    | ExportEntries,
    Field(discriminator="operation"),
]

# --- jobs -------------------------------------------------------------------------------------


class DatasetJob(BaseModel):
    """Long dataset work, replayed after a crash until it finishes."""

    job_id: str
    kind: Literal["import_manifest", "update_entries", "remove_entries", "delete_dataset"]
    project_name: ProjectName
    dataset_type: DatasetType
    manifest: InputS3Object | None = None
    changes_key: str | None = None
    source_refs: list[str] | None = None  # remove_entries


# --- events -----------------------------------------------------------------------------------


class ModelVersionEvent(BaseModel):
    """Published by the training service whenever a model version appears or is gone."""

    kind: Literal["created", "deleted"]
    project_name: ProjectName
    model_version: str
    at: datetime
