"""Contracts of human review: the A2I runtime commands (2019-11-07), Loupe's flow definitions and
activation conditions, the reviewer page's commands, the activation table the inference workers
follow, and the status events of human loops.

Names and limits follow the A2I runtime reference; flow definitions borrow SageMaker's
CreateFlowDefinition field names so A2I users recognise them.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from .access_keys import Description, KeyId, KeyStatus, Role
from .lookout import ProjectName
from .messages import Command

# --- the A2I runtime reference ----------------------------------------------------------------

NAME_PATTERN = r"^[a-z0-9](-*[a-z0-9])*$"
FLOW_ARN_PATTERN = r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:flow-definition/.*$"
MAX_INPUT_CONTENT = 3_145_728
MAX_ARN = 1024
MAX_NEXT_TOKEN = 8192

IN_PROGRESS, FAILED, COMPLETED, STOPPED, STOPPING = "InProgress", "Failed", "Completed", "Stopped", "Stopping"
ACTIVE = (IN_PROGRESS, STOPPING)

LoopName = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=NAME_PATTERN)]
FlowName = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=NAME_PATTERN)]
FlowArn = Annotated[str, StringConstraints(max_length=MAX_ARN, pattern=FLOW_ARN_PATTERN)]
ContentClassifier = Literal["FreeOfPersonallyIdentifiableInformation", "FreeOfAdultContent"]

# TaskAvailabilityLifetimeInSeconds: 1 s to 10 days; TaskTimeLimitInSeconds: at least 30 s.
MAX_AVAILABILITY_SECONDS = 864_000
MIN_TASK_TIME_LIMIT = 30
MAX_TASK_TIME_LIMIT = 28_800


def loop_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:human-loop/{name}"


def flow_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:flow-definition/{name}"


def flow_name_of(arn: str) -> str:
    return arn.rsplit("flow-definition/", 1)[-1]


def activated_loop_name(flow_name: str, request_id: str) -> str:
    """The loop a detection starts: the same request (e.g. a redelivered ingest image) always
    names the same loop, so a retry finds the existing loop instead of making a second one."""
    return "loupe-" + hashlib.sha256(f"{flow_name}\0{request_id}".encode()).hexdigest()[:32]


# --- activation conditions ---------------------------------------------------------------------
# {"Conditions": [node, ...]} starts a loop when ANY top-level node holds (as in A2I); a node is
# a condition, {"And": [node, ...]} or {"Or": [node, ...]}.

ConditionType = Literal["ConfidenceCheck", "PredictedAnomalous", "PredictedNormal", "Sampling"]


class Condition(BaseModel):
    ConditionType: ConditionType
    ConditionParameters: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _parameters(self) -> Condition:
        params = self.ConditionParameters
        if self.ConditionType == "ConfidenceCheck":
            value = params.get("ConfidenceLessThan")
            if set(params) != {"ConfidenceLessThan"} or value is None or not 0 <= value <= 1:
                raise ValueError("ConfidenceCheck needs ConditionParameters {ConfidenceLessThan: 0..1}")
        elif self.ConditionType == "Sampling":
            value = params.get("RandomSamplingPercentage")
            if set(params) != {"RandomSamplingPercentage"} or value is None or not 0 <= value <= 100:
                raise ValueError("Sampling needs ConditionParameters {RandomSamplingPercentage: 0..100}")
        elif params:
            raise ValueError(f"{self.ConditionType} takes no ConditionParameters")
        return self


class AndNode(BaseModel):
    And: list[ConditionNode] = Field(min_length=1, max_length=10)


class OrNode(BaseModel):
    Or: list[ConditionNode] = Field(min_length=1, max_length=10)


ConditionNode = Condition | AndNode | OrNode
AndNode.model_rebuild()
OrNode.model_rebuild()


# And/Or levels; checked before the recursive validation that a deep tree would exhaust
MAX_CONDITION_DEPTH = 5


class ActivationConditions(BaseModel):
    Conditions: list[ConditionNode] = Field(min_length=1, max_length=10)

    @model_validator(mode="before")
    @classmethod
    def _shallow(cls, data: Any) -> Any:
        nodes = data.get("Conditions") if isinstance(data, dict) else None
        stack = [(node, 1) for node in nodes] if isinstance(nodes, list) else []
        while stack:
            node, depth = stack.pop()
            if depth > MAX_CONDITION_DEPTH:
                raise ValueError(f"conditions nest at most {MAX_CONDITION_DEPTH} And/Or levels deep")
            for key in ("And", "Or"):
                children = node.get(key) if isinstance(node, dict) else None
                if isinstance(children, list):
                    stack.extend((child, depth + 1) for child in children)
        return data


class Prediction(BaseModel):
    """What the model said about one image: the facts conditions are tested against."""

    is_anomalous: bool
    confidence: float
    request_id: str = Field(description="Decides Sampling, so a redelivered image decides the same")


def _sample(request_id: str) -> float:
    """A number in [0, 100) fixed by the request id."""
    return int(hashlib.sha256(request_id.encode()).hexdigest()[:8], 16) / 0x1_0000_0000 * 100


def _holds(node: ConditionNode, p: Prediction, reasons: list[str]) -> bool:
    if isinstance(node, AndNode):
        found: list[str] = []
        if all(_holds(child, p, found) for child in node.And):
            reasons.extend(found)
            return True
        return False
    if isinstance(node, OrNode):
        return any([_holds(child, p, reasons) for child in node.Or])  # every reason that held
    params = node.ConditionParameters
    held = {
        "ConfidenceCheck": lambda: p.confidence < params.get("ConfidenceLessThan", 0),
        "PredictedAnomalous": lambda: p.is_anomalous,
        "PredictedNormal": lambda: not p.is_anomalous,
        "Sampling": lambda: _sample(p.request_id) < params.get("RandomSamplingPercentage", 0),
    }[node.ConditionType]()
    if held:
        reasons.append(node.ConditionType)
    return held


def activation_reasons(conditions: ActivationConditions, prediction: Prediction) -> list[str]:
    """The condition types that started a loop; empty when no top-level node holds."""
    reasons: list[str] = []
    held = [_holds(node, prediction, reasons) for node in conditions.Conditions]
    return list(dict.fromkeys(reasons)) if any(held) else []


# --- flow definitions ---------------------------------------------------------------------------


def _default_categories() -> dict[Literal["normal", "anomaly"], str]:
    return {"normal": "normal", "anomaly": "anomaly"}


class LoopConfig(BaseModel):
    TaskTitle: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    TaskDescription: Annotated[str, StringConstraints(min_length=1, max_length=4000)] = Field(
        description="The instructions reviewers read")
    TaskCount: int = Field(1, ge=1, le=3, description="Reviewers per item")
    TaskAvailabilityLifetimeInSeconds: int = Field(86_400, ge=1, le=MAX_AVAILABILITY_SECONDS)
    TaskTimeLimitInSeconds: int = Field(300, ge=MIN_TASK_TIME_LIMIT, le=MAX_TASK_TIME_LIMIT)
    TaskUi: Literal["anomaly-classification"] = "anomaly-classification"
    DefectBrush: bool = Field(False, description="Reviewers may paint the defect region")
    AnswerFormat: Literal["loupe", "crowd-image-classifier", "crowd-semantic-segmentation"] = Field(
        "loupe", description="The shape of output.json's humanAnswers[].answerContent: Loupe's own "
        "({\"anomaly\": {\"label\", \"maskS3Uri\"}}), or that of the AWS standard worker task template "
        "this flow imitates, so code written for A2I reads the answers unchanged (Loupe's own shape is "
        "then beside it, as loupeAnswerContent)")
    Categories: dict[Literal["normal", "anomaly"],
                     Annotated[str, StringConstraints(min_length=1, max_length=256)]] = Field(
        default_factory=_default_categories,
        description="crowd-image-classifier: the category name each answer is written as; "
        "crowd-semantic-segmentation: the anomaly's label name")


class OutputLocation(BaseModel):
    S3OutputPath: Annotated[str, StringConstraints(max_length=1024, pattern=r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$")]


class ActivationConfig(BaseModel):
    ProjectName: ProjectName
    ModelVersion: Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,9}$")] | None = Field(
        None, description="Only this version's results; every version of the project when absent")
    HumanLoopActivationConditions: ActivationConditions


class FeedbackConfig(BaseModel):
    """Completed answers become labelled entries of the project's dataset."""

    DatasetType: Literal["train", "test"] = "train"
    RetrainAfter: int | None = Field(None, ge=1, le=100_000,
                                     description="Start CreateModel once this many answers wait")


class FlowDefinitionSpec(BaseModel):
    FlowDefinitionName: FlowName
    HumanLoopConfig: LoopConfig
    OutputConfig: OutputLocation | None = None
    HumanLoopActivationConfig: ActivationConfig | None = None
    DatasetFeedback: FeedbackConfig | None = None
    MaxActiveHumanLoops: int | None = Field(None, ge=1, description="Capped by LOUPE_MAX_ACTIVE_HUMAN_LOOPS")

    @field_validator("DatasetFeedback")
    @classmethod
    def _needs_a_project(cls, value: Any, info: Any) -> Any:
        if value is not None and info.data.get("HumanLoopActivationConfig") is None:
            raise ValueError("DatasetFeedback needs HumanLoopActivationConfig (it names the project)")
        return value


# --- commands of the human-loop service (topic loupe.humanloop.commands) ------------------------


class LoopOrigin(BaseModel):
    """Where an activated loop came from: set by the inference worker, never by an API caller."""

    project_name: str
    model_version: str
    request_id: str
    image_key: str = Field(description="Blob key of the image")
    content_type: str
    heatmap_key: str | None = None
    mask_key: str | None = None
    width: int
    height: int


class StartHumanLoop(Command):
    operation: Literal["StartHumanLoop"] = "StartHumanLoop"
    human_loop_name: LoopName
    flow_definition_arn: FlowArn
    input_content: Annotated[str, StringConstraints(max_length=MAX_INPUT_CONTENT)]
    input_content_key: str | None = Field(None, description="Blob key of a large InputContent (claim check); "
                                          "input_content is then empty")
    content_classifiers: list[ContentClassifier] | None = Field(None, max_length=256)
    origin: LoopOrigin | None = None


class DescribeHumanLoop(Command):
    operation: Literal["DescribeHumanLoop"] = "DescribeHumanLoop"
    human_loop_name: LoopName


class ListHumanLoops(Command):
    operation: Literal["ListHumanLoops"] = "ListHumanLoops"
    flow_definition_arn: FlowArn
    creation_time_after: datetime | None = None
    creation_time_before: datetime | None = None
    sort_order: Literal["Ascending", "Descending"] = "Descending"
    max_results: int = Field(100, ge=1, le=100)
    next_token: Annotated[str, StringConstraints(max_length=MAX_NEXT_TOKEN)] | None = None


class StopHumanLoop(Command):
    operation: Literal["StopHumanLoop"] = "StopHumanLoop"
    human_loop_name: LoopName


class DeleteHumanLoop(Command):
    operation: Literal["DeleteHumanLoop"] = "DeleteHumanLoop"
    human_loop_name: LoopName


class GetHumanLoopOutput(Command):
    operation: Literal["GetHumanLoopOutput"] = "GetHumanLoopOutput"
    human_loop_name: LoopName


class CreateFlowDefinition(Command):
    operation: Literal["CreateFlowDefinition"] = "CreateFlowDefinition"
    spec: FlowDefinitionSpec


class DescribeFlowDefinition(Command):
    operation: Literal["DescribeFlowDefinition"] = "DescribeFlowDefinition"
    flow_definition_name: FlowName


class ListFlowDefinitions(Command):
    operation: Literal["ListFlowDefinitions"] = "ListFlowDefinitions"


class DeleteFlowDefinition(Command):
    operation: Literal["DeleteFlowDefinition"] = "DeleteFlowDefinition"
    flow_definition_name: FlowName


class ReviewedImages(Command):
    """How many reviewed images were added to a project's dataset since its last training run."""

    operation: Literal["ReviewedImages"] = "ReviewedImages"
    project_name: ProjectName


# --- reviewers and the review page -------------------------------------------------------------

Username = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@\-]+$")]
Password = Annotated[str, StringConstraints(min_length=8, max_length=256)]
SessionToken = Annotated[str, StringConstraints(min_length=16, max_length=128)]


class CreateReviewer(Command):
    operation: Literal["CreateReviewer"] = "CreateReviewer"
    username: Username
    password: Password


class ListReviewers(Command):
    operation: Literal["ListReviewers"] = "ListReviewers"


class DeleteReviewer(Command):
    operation: Literal["DeleteReviewer"] = "DeleteReviewer"
    username: Username


# --- access keys (the human-loop service keeps them; see access_keys) ------------------------------


class CreateAccessKey(Command):
    operation: Literal["CreateAccessKey"] = "CreateAccessKey"
    role: Role
    description: Description = ""


class ListAccessKeys(Command):
    operation: Literal["ListAccessKeys"] = "ListAccessKeys"


class UpdateAccessKey(Command):
    operation: Literal["UpdateAccessKey"] = "UpdateAccessKey"
    key_id: KeyId
    status: KeyStatus


class DeleteAccessKey(Command):
    operation: Literal["DeleteAccessKey"] = "DeleteAccessKey"
    key_id: KeyId


class ResolveAccessKey(Command):
    """A gateway's lookup of a key its table does not have yet: the published form, or NotFound."""

    operation: Literal["ResolveAccessKey"] = "ResolveAccessKey"
    key_id: KeyId


class SignIn(Command):
    operation: Literal["SignIn"] = "SignIn"
    username: Annotated[str, StringConstraints(max_length=64)]
    password: Annotated[str, StringConstraints(max_length=256)]


class ReviewerCommand(Command):
    session: SessionToken


class WhoAmI(ReviewerCommand):
    """The signed-in reviewer of a session (the page's first call)."""

    operation: Literal["WhoAmI"] = "WhoAmI"


class SignOut(ReviewerCommand):
    operation: Literal["SignOut"] = "SignOut"


class ReviewQueue(ReviewerCommand):
    """The flow definitions with open tasks for this reviewer."""

    operation: Literal["ReviewQueue"] = "ReviewQueue"


class ClaimTask(ReviewerCommand):
    operation: Literal["ClaimTask"] = "ClaimTask"
    flow_definition_name: FlowName


class TaskFile(ReviewerCommand):
    """The blob key of a claimed task's image, heatmap or model mask."""

    operation: Literal["TaskFile"] = "TaskFile"
    human_loop_name: LoopName
    which: Literal["image", "heatmap", "mask"]


class AnswerTask(ReviewerCommand):
    operation: Literal["AnswerTask"] = "AnswerTask"
    human_loop_name: LoopName
    label: Literal["normal", "anomaly"]
    mask_key: str | None = Field(None, description="Blob key of the painted defect mask (PNG)")


class SkipTask(ReviewerCommand):
    operation: Literal["SkipTask"] = "SkipTask"
    human_loop_name: LoopName


HumanLoopCommand = Annotated[
    StartHumanLoop | DescribeHumanLoop | ListHumanLoops | StopHumanLoop | DeleteHumanLoop
    | GetHumanLoopOutput | CreateFlowDefinition | DescribeFlowDefinition | ListFlowDefinitions
    | DeleteFlowDefinition | ReviewedImages | CreateReviewer | ListReviewers | DeleteReviewer
    | CreateAccessKey | ListAccessKeys | UpdateAccessKey | DeleteAccessKey | ResolveAccessKey
    | SignIn | WhoAmI | SignOut
    | ReviewQueue | ClaimTask | TaskFile | AnswerTask | SkipTask,
    Field(discriminator="operation"),
]


# --- what the inference workers follow (topic loupe.humanloop.activations) ----------------------


class ActivationRule(BaseModel):
    flow_definition_name: str
    flow_definition_arn: str
    project_name: str
    model_version: str | None
    conditions: ActivationConditions

    def applies_to(self, project_name: str, model_version: str) -> bool:
        return self.project_name == project_name and self.model_version in (None, model_version)


class ActivationTable(BaseModel):
    generation: int
    sent_at: datetime
    rules: list[ActivationRule] = Field(default_factory=list)

    def for_model(self, project_name: str, model_version: str) -> list[ActivationRule]:
        return [r for r in self.rules if r.applies_to(project_name, model_version)]
