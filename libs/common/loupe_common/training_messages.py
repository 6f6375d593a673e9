"""Contracts of the training service: the commands it answers on loupe.training.commands."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from .lookout import MaxResults, ModelVersionRef, PaginationToken, ProjectName, Shape, Tag, TagKey
from .lookout import S3BucketName, S3KeyPrefix
from .messages import Command

ModelVersion = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,9}$")]
ModelDescriptionText = Annotated[str, StringConstraints(min_length=1, max_length=500,
                                                       pattern=r"^[0-9A-Za-z._\-]*$")]
KmsKeyId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2048, pattern=r"^[A-Za-z0-9][A-Za-z0-9:_/+=,@.-]{0,2048}$"),
]


class S3Location(Shape):
    bucket: S3BucketName
    prefix: S3KeyPrefix | None = None


class OutputConfig(Shape):
    s3_location: S3Location


class CreateModel(Command):
    operation: Literal["CreateModel"] = "CreateModel"
    project_name: ProjectName
    description: ModelDescriptionText | None = None
    output_config: OutputConfig
    kms_key_id: KmsKeyId | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=200)


class DescribeModel(Command):
    operation: Literal["DescribeModel"] = "DescribeModel"
    project_name: ProjectName
    model_version: ModelVersionRef


class ListModels(Command):
    operation: Literal["ListModels"] = "ListModels"
    project_name: ProjectName
    max_results: MaxResults = 100
    next_token: PaginationToken | None = None


class DeleteModel(Command):
    operation: Literal["DeleteModel"] = "DeleteModel"
    project_name: ProjectName
    model_version: ModelVersionRef


class GetModelArtifacts(Command):
    """Loupe-native: the blob keys of a trained model's artifacts (model, sidecar, evaluation)."""

    operation: Literal["GetModelArtifacts"] = "GetModelArtifacts"
    project_name: ProjectName
    model_version: ModelVersionRef


class TagModel(Command):
    operation: Literal["TagModel"] = "TagModel"
    project_name: ProjectName
    model_version: ModelVersion
    tags: list[Tag]


class UntagModel(Command):
    operation: Literal["UntagModel"] = "UntagModel"
    project_name: ProjectName
    model_version: ModelVersion
    tag_keys: list[TagKey]


class ListModelTags(Command):
    operation: Literal["ListModelTags"] = "ListModelTags"
    project_name: ProjectName
    model_version: ModelVersion


class SetHostingStatus(Command):
    """From the hosting service: move a model version's hosting status. Applied only when the
    current status is one of `from_statuses`, else a ConflictException (or ValidationException
    when the version failed training) that the hosting service passes on to the caller."""

    operation: Literal["SetHostingStatus"] = "SetHostingStatus"
    project_name: ProjectName
    model_version: ModelVersionRef
    status: Literal["STARTING_HOSTING", "HOSTED", "HOSTING_FAILED", "STOPPING_HOSTING", "TRAINED"]
    from_statuses: list[str]
    status_message: str
    conflict_hint: str = Field("", description="Appended to the ConflictException's message")
    min_inference_units: int | None = None
    max_inference_units: int | None = None


class ListHostingVersions(Command):
    """From the hosting service: every model version whose status says it is (being) hosted or
    stopped, so hosting can rebuild a deployment its own store lacks (e.g. it died between
    SetHostingStatus and writing the deployment)."""

    operation: Literal["ListHostingVersions"] = "ListHostingVersions"


class HostingVersion(BaseModel):
    project_name: str
    model_version: str
    status: Literal["STARTING_HOSTING", "HOSTED", "STOPPING_HOSTING"]
    min_inference_units: int | None = None
    max_inference_units: int | None = None
    artifacts: dict[str, str] = Field(default_factory=dict)


# --- model packaging (edge bundles as Greengrass components) ----------------------------------

PackagingJobName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9-]+$")]
PackagingText = Annotated[str, StringConstraints(min_length=1, max_length=256,
                                                pattern=r"^[a-zA-Z0-9-_. ()':,;?]+$")]
ComponentName = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[a-zA-Z0-9-_.]+$")]
ComponentVersion = Annotated[str, StringConstraints(min_length=1, max_length=64,
                                                    pattern=r"^([0-9]{1,6})\.([0-9]{1,6})\.([0-9]{1,6})$")]
NVIDIA_COMPILER_OPTIONS = ("gpu-code", "trt-ver", "cuda-ver")  # what an NVIDIA target must name
PACKAGING_CREATED, PACKAGING_RUNNING = "CREATED", "RUNNING"
PACKAGING_SUCCEEDED, PACKAGING_FAILED = "SUCCEEDED", "FAILED"


class TargetPlatform(Shape):
    os: Literal["LINUX"]
    arch: Literal["ARM64", "X86_64"]
    accelerator: Literal["NVIDIA"] | None = None


class GreengrassConfiguration(Shape):
    compiler_options: Annotated[str, StringConstraints(min_length=3, max_length=1024)] | None = None
    target_device: Literal["jetson_xavier"] | None = None
    target_platform: TargetPlatform | None = None
    s3_output_location: S3Location
    component_name: ComponentName
    component_version: ComponentVersion | None = None
    component_description: PackagingText | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _one_target(self) -> GreengrassConfiguration:
        # The rules of Lookout's StartModelPackagingJob, with its words.
        if (self.target_device is None) == (self.target_platform is None):
            raise ValueError("Specify either TargetDevice or TargetPlatform, not both and not neither")
        if self.target_device is not None and self.compiler_options is not None:
            raise ValueError("Don't specify CompilerOptions with TargetDevice")
        if self.target_platform is not None and self.target_platform.accelerator == "NVIDIA":
            missing = [o for o in NVIDIA_COMPILER_OPTIONS if o not in (self.compiler_options or "")]
            if missing:
                raise ValueError("With the NVIDIA accelerator, CompilerOptions must specify "
                                 + ", ".join(missing))
        return self


class ModelPackagingConfiguration(Shape):
    greengrass: GreengrassConfiguration


class StartModelPackagingJob(Command):
    operation: Literal["StartModelPackagingJob"] = "StartModelPackagingJob"
    project_name: ProjectName
    model_version: ModelVersionRef
    job_name: PackagingJobName | None = None
    configuration: ModelPackagingConfiguration
    description: PackagingText | None = None


class DescribeModelPackagingJob(Command):
    operation: Literal["DescribeModelPackagingJob"] = "DescribeModelPackagingJob"
    project_name: ProjectName
    job_name: PackagingJobName


class ListModelPackagingJobs(Command):
    operation: Literal["ListModelPackagingJobs"] = "ListModelPackagingJobs"
    project_name: ProjectName
    max_results: MaxResults = 100
    next_token: PaginationToken | None = None


def packaging_output(greengrass: dict) -> tuple[str, str, str]:
    """(bucket, bundle key, recipe key) a packaging job writes for its Greengrass configuration:
    `<Prefix><ComponentName>/<ComponentVersion>/<ComponentName>-<ComponentVersion>.zip` and recipe.json
    beside it."""
    location = greengrass["S3OutputLocation"]
    name, version = greengrass["ComponentName"], greengrass["ComponentVersion"]
    folder = f"{location.get('Prefix', '')}{name}/{version}/"
    return location["Bucket"], f"{folder}{name}-{version}.zip", f"{folder}recipe.json"


class PackagingJob(BaseModel):
    """Queued on loupe.packaging.jobs; replayed after a crash until the job is final."""

    job_id: str
    project_name: ProjectName
    job_name: PackagingJobName


TrainingCommand = Annotated[
    CreateModel | DescribeModel | ListModels | DeleteModel | GetModelArtifacts | TagModel | UntagModel
    | ListModelTags | SetHostingStatus | ListHostingVersions
    | StartModelPackagingJob | DescribeModelPackagingJob | ListModelPackagingJobs,
    Field(discriminator="operation"),
]


class TrainingJob(BaseModel):
    """Queued on loupe.training.jobs; replayed after a crash until the model version is final."""

    job_id: str
    project_name: ProjectName
    model_version: ModelVersion
