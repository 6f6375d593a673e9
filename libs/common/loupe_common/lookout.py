"""Lookout for Vision (2020-11-20) shapes: the constraints the reference sets and the response
objects, serialised with the API's PascalCase names."""

from __future__ import annotations

import unicodedata
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_pascal

# --- constraints, exactly as the reference (patterns are matched against the whole value) ----

ProjectName = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_\-]*$")
]
ClientToken = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9-]+$")
]
PaginationToken = Annotated[
    str, StringConstraints(max_length=2048, pattern=r"^[a-zA-Z0-9/+=]{0,2048}$")
]
MaxResults = Annotated[int, Field(ge=1, le=100)]
ModelVersionRef = Annotated[
    str, StringConstraints(min_length=1, max_length=10, pattern=r"^([1-9][0-9]*|latest)$")
]
S3BucketName = Annotated[
    str, StringConstraints(min_length=3, max_length=63, pattern=r"^[0-9A-Za-z.\-_]*$")
]
S3ObjectKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1024,
                      pattern=r"^([a-zA-Z0-9!_.*'()-][/a-zA-Z0-9!_.*'()-]*)?$"),
]
S3KeyPrefix = Annotated[
    str,
    StringConstraints(max_length=1024, pattern=r"^([a-zA-Z0-9!_.*'()-][/a-zA-Z0-9!_.*'()-]*)?$"),
]
S3ObjectVersion = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
SourceRefContains = Annotated[
    str, StringConstraints(min_length=1, max_length=2048, pattern=r"^[\s\S]*\S[\s\S]*$")
]
ResourceArnString = Annotated[str, StringConstraints(min_length=1, max_length=1011)]

MAX_TAGS = 200
MAX_DATASET_CHANGES_BYTES = 10_485_760
MAX_DATASET_ENTRY_CHARS = 8192

_TAG_EXTRA = set("_.:/=+-@")


def _check_tag_chars(value: str) -> str:
    """The reference pattern ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$ (Python's re has no \\p{})."""
    for ch in value:
        if ch in _TAG_EXTRA or unicodedata.category(ch)[0] in "LZN":
            continue
        raise ValueError(
            r"must satisfy regular expression pattern: ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$"
        )
    return value


TagKey = Annotated[
    str, StringConstraints(min_length=1, max_length=128), AfterValidator(_check_tag_chars)
]
TagValue = Annotated[
    str, StringConstraints(min_length=0, max_length=256), AfterValidator(_check_tag_chars)
]


class DatasetType(StrEnum):
    TRAIN = "train"
    TEST = "test"


class AnomalyClass(StrEnum):
    NORMAL = "normal"
    ANOMALY = "anomaly"


class DatasetStatus(StrEnum):
    CREATE_IN_PROGRESS = "CREATE_IN_PROGRESS"
    CREATE_COMPLETE = "CREATE_COMPLETE"
    CREATE_FAILED = "CREATE_FAILED"
    UPDATE_IN_PROGRESS = "UPDATE_IN_PROGRESS"
    UPDATE_COMPLETE = "UPDATE_COMPLETE"
    UPDATE_FAILED_ROLLBACK_IN_PROGRESS = "UPDATE_FAILED_ROLLBACK_IN_PROGRESS"
    UPDATE_FAILED_ROLLBACK_COMPLETE = "UPDATE_FAILED_ROLLBACK_COMPLETE"
    DELETE_IN_PROGRESS = "DELETE_IN_PROGRESS"
    DELETE_COMPLETE = "DELETE_COMPLETE"
    DELETE_FAILED = "DELETE_FAILED"


BUSY_DATASET_STATUSES = frozenset(
    {
        DatasetStatus.CREATE_IN_PROGRESS,
        DatasetStatus.UPDATE_IN_PROGRESS,
        DatasetStatus.UPDATE_FAILED_ROLLBACK_IN_PROGRESS,
        DatasetStatus.DELETE_IN_PROGRESS,
    }
)


# --- objects in requests and responses --------------------------------------------------------


class Shape(BaseModel):
    """Base for API objects: PascalCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, extra="forbid")

    def wire(self) -> dict:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Tag(Shape):
    key: TagKey
    value: TagValue


class InputS3Object(Shape):
    bucket: S3BucketName
    key: S3ObjectKey
    version_id: S3ObjectVersion | None = None


class DatasetGroundTruthManifest(Shape):
    s3_object: InputS3Object | None = Field(None, alias="S3Object")


class DatasetSource(Shape):
    ground_truth_manifest: DatasetGroundTruthManifest | None = None


class ProjectMetadata(Shape):
    creation_timestamp: float
    project_arn: str
    project_name: str


class DatasetMetadata(Shape):
    creation_timestamp: float
    dataset_type: DatasetType
    status: DatasetStatus
    status_message: str | None = None


class ProjectDescription(Shape):
    creation_timestamp: float
    datasets: list[DatasetMetadata]
    project_arn: str
    project_name: str


class DatasetImageStats(Shape):
    total: int
    labeled: int
    normal: int
    anomaly: int


class DatasetDescription(Shape):
    project_name: str
    dataset_type: DatasetType
    creation_timestamp: float
    last_updated_timestamp: float
    status: DatasetStatus
    status_message: str | None = None
    image_stats: DatasetImageStats
