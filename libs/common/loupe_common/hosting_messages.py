"""Contracts of hosting and inference: the hosting service's commands, the workers' heartbeats,
the assignment table, and the headers of a detection request on a model's request topic."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from .lookout import ModelVersionRef, ProjectName
from .messages import Command

InferenceUnits = Annotated[int, Field(ge=1)]

STARTING, HOSTED = "STARTING_HOSTING", "HOSTED"
HOSTING_FAILED, STOPPING = "HOSTING_FAILED", "STOPPING_HOSTING"
TRAINED = "TRAINED"


class StartModel(Command):
    operation: Literal["StartModel"] = "StartModel"
    project_name: ProjectName
    model_version: ModelVersionRef
    min_inference_units: InferenceUnits
    max_inference_units: InferenceUnits | None = None

    @model_validator(mode="after")
    def _max_not_below_min(self) -> StartModel:
        if self.max_inference_units is not None and self.max_inference_units < self.min_inference_units:
            raise ValueError("MaxInferenceUnits must not be less than MinInferenceUnits")
        return self


class StopModel(Command):
    operation: Literal["StopModel"] = "StopModel"
    project_name: ProjectName
    model_version: ModelVersionRef


class ResolveDeployment(Command):
    """Where DetectAnomalies for this model version goes: the request topic when HOSTED, else the
    Lookout error (404 unknown version, 409 not hosted)."""

    operation: Literal["ResolveDeployment"] = "ResolveDeployment"
    project_name: ProjectName
    model_version: ModelVersionRef


class DescribeHosting(Command):
    """Loupe-native: a model version's inference units as they are now (units serving, how busy)."""

    operation: Literal["DescribeHosting"] = "DescribeHosting"
    project_name: ProjectName
    model_version: ModelVersionRef


HostingCommand = Annotated[StartModel | StopModel | ResolveDeployment | DescribeHosting,
                           Field(discriminator="operation")]


# --- between hosting and the workers ----------------------------------------------------------


class ModelLoad(BaseModel):
    """A worker's state for one model version."""

    state: Literal["loading", "ready", "failed"]
    error: str | None = None
    serving: bool = Field(False, description="A member of the model's unit group (DetectAnomalies)")
    busy: float = Field(0.0, ge=0, le=1, description="Share of the last heartbeat interval the unit spent "
                        "answering requests (drives autoscaling between Min and MaxInferenceUnits)")


class WorkerHeartbeat(BaseModel):
    worker_id: str
    sent_at: datetime
    started_at: datetime
    threads: int
    models: dict[str, ModelLoad] = Field(default_factory=dict, description="by model key")
    stopping: bool = False


class HostedModel(BaseModel):
    project_name: str
    model_version: str
    status: str
    topic: str
    artifacts: dict[str, str] = Field(description="blob keys: model.onnx, model.json")


class AssignmentTable(BaseModel):
    """The hosting service's whole decision, re-sent every heartbeat interval."""

    generation: int
    sent_at: datetime
    models: dict[str, HostedModel] = Field(default_factory=dict, description="by model key")
    workers: dict[str, list[str]] = Field(default_factory=dict, description="worker id -> model keys")


# --- a detection request on a model's request topic (raw Kafka record) ------------------------
# The value is the image bytes (empty when the image travels through blob storage); these headers
# carry the rest. The reply is a JSON Reply on `reply_to`, matched by `correlation_id`.

H_CORRELATION = "correlation_id"
H_REPLY_TO = "reply_to"
H_REQUEST_ID = "loupe-request-id"
H_CONTENT_TYPE = "loupe-content-type"
H_THRESHOLD = "loupe-threshold"
H_MASK = "loupe-mask"
H_HEATMAP = "loupe-heatmap"  # "1": the native result also carries the heatmap PNG (console, review)
H_BLOB = "loupe-blob"
