"""CreateModel, DescribeModel, ListModels, DeleteModel (and the Loupe-native artifact lookup)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from pymongo import ReturnDocument

from loupe_common import dataset_messages as dm
from loupe_common import idempotency
from loupe_common.arn import model_arn
from loupe_common.dataset_messages import ModelVersionEvent
from loupe_common.errors import ResourceType, conflict, not_found, validation
from loupe_common.messages import Reply
from loupe_common.pagination import decode_token, encode_token
from loupe_common.tagging import tag_update
from loupe_common.topics import DATASET_COMMANDS
from loupe_common.training_messages import (
    CreateModel,
    DeleteModel,
    DescribeModel,
    GetModelArtifacts,
    ListModels,
    HostingVersion,
    ListHostingVersions,
    SetHostingStatus,
    TrainingJob,
)

from .dataplan import plan
from .store import TrainingState, model_id

TRAINING, TRAINED, TRAINING_FAILED, DELETING = "TRAINING", "TRAINED", "TRAINING_FAILED", "DELETING"
BUSY = {TRAINING, "STARTING_HOSTING", "HOSTED", "STOPPING_HOSTING", DELETING}


Enqueue = Callable[[TrainingJob], Awaitable[None]]
Announce = Callable[[ModelVersionEvent], Awaitable[None]]


def _now() -> datetime:
    current = datetime.now(UTC)
    return current.replace(microsecond=current.microsecond // 1000 * 1000)


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    return round((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp(), 3)


def metadata(doc: dict) -> dict:
    """ModelMetadata (CreateModel, ListModels)."""
    out = {
        "CreationTimestamp": _epoch(doc["created_at"]),
        "ModelVersion": str(doc["version"]),
        "ModelArn": doc["arn"],
        "Status": doc["status"],
        "StatusMessage": doc.get("status_message"),
    }
    if doc.get("description"):
        out["Description"] = doc["description"]
    if doc.get("performance"):
        out["Performance"] = doc["performance"]
    return {k: v for k, v in out.items() if v is not None}


def description(doc: dict) -> dict:
    """ModelDescription (DescribeModel)."""
    out = metadata(doc)
    output = {"Bucket": doc["output"]["bucket"]}
    if doc["output"].get("prefix"):
        output["Prefix"] = doc["output"]["prefix"]
    out["OutputConfig"] = {"S3Location": output}
    for field, key in (("EvaluationManifest", "evaluation_manifest"),
                       ("EvaluationResult", "evaluation_result")):
        if doc.get(key):
            out[field] = doc[key]
    if doc.get("evaluation_end_at"):
        out["EvaluationEndTimestamp"] = _epoch(doc["evaluation_end_at"])
    if doc.get("kms_key_id"):
        out["KmsKeyId"] = doc["kms_key_id"]
    for field in ("MinInferenceUnits", "MaxInferenceUnits"):
        if doc.get(field):
            out[field] = doc[field]
    return out


async def resolve(state: TrainingState, project_name: str, version: str, request_id: str) -> dict:
    """A model version document; `latest` is the newest version of the project."""
    if version == "latest":
        doc = await state.models.find_one({"project_name": project_name}, sort=[("version", -1)])
    else:
        doc = await state.models.find_one({"_id": model_id(project_name, version)})
    if doc is None:
        await project_datasets(state, project_name, request_id)
        raise not_found(ResourceType.MODEL, f"{project_name}/{version}",
                        f"Model version {version} of project {project_name} does not exist")
    return doc


async def project_datasets(state: TrainingState, project_name: str, request_id: str) -> dict:
    """The project's datasets (asking the dataset service, which owns projects)."""
    reply = await state.datasets.request(
        DATASET_COMMANDS, dm.SummarizeDatasets(request_id=request_id, project_name=project_name),
        key=project_name,
    )
    return reply.unwrap()["datasets"]


async def create_model(state: TrainingState, cmd: CreateModel, enqueue: Enqueue, announce: Announce) -> Reply:
    async def work() -> Reply:
        datasets = await project_datasets(state, cmd.project_name, cmd.request_id)
        data = plan(cmd.project_name, datasets)
        counter = await state.counters.find_one_and_update(
            {"_id": cmd.project_name}, {"$inc": {"last_version": 1}}, upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        version = counter["last_version"]
        arn = model_arn(state.settings, cmd.project_name, str(version))
        location = cmd.output_config.s3_location
        doc = {
            "_id": model_id(cmd.project_name, version),
            "project_name": cmd.project_name,
            "version": version,
            "arn": arn,
            "description": cmd.description,
            "kms_key_id": cmd.kms_key_id,
            "output": {"bucket": location.bucket, "prefix": location.prefix},
            "status": TRAINING,
            "status_message": f"Queued: {data.describe()}",
            "created_at": _now(),
            "job_id": cmd.request_id,
            "attempts": 0,
            "separate_test": data.separate_test,
            "tags": {},
        }
        if cmd.tags:
            doc["tags"] = {k.removeprefix("tags."): v for k, v in
                           tag_update({}, cmd.tags, arn=arn, resource_type=ResourceType.MODEL).items()}
        await state.models.insert_one(doc)
        await announce(ModelVersionEvent(kind="created", project_name=cmd.project_name,
                                         model_version=str(version), at=doc["created_at"]))
        await enqueue(TrainingJob(job_id=cmd.request_id, project_name=cmd.project_name,
                                  model_version=str(version)))
        return Reply.success({"ModelMetadata": metadata(doc)}, status=202)

    params = cmd.model_dump(mode="json", exclude={"request_id", "client_token", "operation"})
    return await idempotency.once(state.db, cmd, params=params, resource_type=ResourceType.MODEL, work=work)


async def describe_model(state: TrainingState, cmd: DescribeModel) -> Reply:
    doc = await resolve(state, cmd.project_name, cmd.model_version, cmd.request_id)
    return Reply.success({"ModelDescription": description(doc)})


async def list_models(state: TrainingState, cmd: ListModels) -> Reply:
    query: dict = {"project_name": cmd.project_name}
    scope = f"ListModels|{cmd.project_name}"
    if cmd.next_token:
        query["version"] = {"$gt": decode_token(scope, cmd.next_token)["after"]}
    docs = await state.models.find(query).sort("version", 1).limit(cmd.max_results + 1).to_list(None)
    if not docs and not cmd.next_token:
        await project_datasets(state, cmd.project_name, cmd.request_id)
    result: dict = {"Models": [metadata(d) for d in docs[: cmd.max_results]]}
    if len(docs) > cmd.max_results:
        result["NextToken"] = encode_token(scope, {"after": docs[cmd.max_results - 1]["version"]})
    return Reply.success(result)


async def delete_model(state: TrainingState, cmd: DeleteModel, announce: Announce) -> Reply:
    async def work() -> Reply:
        doc = await resolve(state, cmd.project_name, cmd.model_version, cmd.request_id)
        if doc["status"] in BUSY:
            raise conflict(ResourceType.MODEL, doc["_id"],
                           f"Model version {doc['version']} is {doc['status']}; "
                           + ("stop it first" if "HOST" in doc["status"] else "wait until it finishes"))
        await state.models.update_one({"_id": doc["_id"]}, {"$set": {"status": DELETING}})
        await state.blobs.delete_prefix(f"models/{doc['project_name']}/{doc['version']}")
        await state.models.delete_one({"_id": doc["_id"]})
        await announce(ModelVersionEvent(kind="deleted", project_name=doc["project_name"],
                                         model_version=str(doc["version"]), at=_now()))
        return Reply.success({"ModelArn": doc["arn"]}, status=202)

    params = {"ProjectName": cmd.project_name, "ModelVersion": cmd.model_version}
    return await idempotency.once(state.db, cmd, params=params, resource_type=ResourceType.MODEL, work=work)


async def get_model_artifacts(state: TrainingState, cmd: GetModelArtifacts) -> Reply:
    doc = await resolve(state, cmd.project_name, cmd.model_version, cmd.request_id)
    if doc["status"] == TRAINING or not doc.get("artifacts"):
        raise conflict(ResourceType.MODEL, doc["_id"],
                       f"Model version {doc['version']} has no artifacts ({doc['status']})")
    return Reply.success({"model_version": str(doc["version"]), "status": doc["status"],
                          "artifacts": doc["artifacts"], "evaluation": doc.get("evaluation_summary", {})})


async def set_hosting_status(state: TrainingState, cmd: SetHostingStatus) -> Reply:
    """A conditional status move for the hosting service. The model document stays the one source
    of a version's status, so DescribeModel and DeleteModel see hosting at once."""
    doc = await resolve(state, cmd.project_name, cmd.model_version, cmd.request_id)
    if doc["status"] not in cmd.from_statuses:
        if doc["status"] == TRAINING_FAILED:
            raise validation(f"Model version {doc['version']} failed training and cannot be hosted")
        raise conflict(ResourceType.MODEL, doc["_id"],
                       f"Model version {doc['version']} is {doc['status']}{cmd.conflict_hint}")
    changes: dict = {"status": cmd.status, "status_message": cmd.status_message}
    unset: dict = {}
    if cmd.status == TRAINED:
        unset = {"MinInferenceUnits": "", "MaxInferenceUnits": ""}
    elif cmd.min_inference_units is not None:
        changes["MinInferenceUnits"] = cmd.min_inference_units
        if cmd.max_inference_units is not None:
            changes["MaxInferenceUnits"] = cmd.max_inference_units
        else:
            unset = {"MaxInferenceUnits": ""}
    update: dict = {"$set": changes}
    if unset:
        update["$unset"] = unset
    updated = await state.models.find_one_and_update(
        {"_id": doc["_id"], "status": doc["status"]}, update, return_document=ReturnDocument.AFTER)
    if updated is None:  # the status moved between the read and the write
        raise conflict(ResourceType.MODEL, doc["_id"],
                       f"Model version {doc['version']} changed status; try again")
    return Reply.success({"ModelVersion": str(updated["version"]), "Status": updated["status"],
                          "previous_status": doc["status"], "artifacts": updated.get("artifacts", {})})


async def list_hosting_versions(state: TrainingState, cmd: ListHostingVersions) -> Reply:  # noqa: ARG001
    docs = state.models.find({"status": {"$in": ["STARTING_HOSTING", "HOSTED", "STOPPING_HOSTING"]}})
    versions = [HostingVersion(project_name=d["project_name"], model_version=str(d["version"]),
                               status=d["status"], min_inference_units=d.get("MinInferenceUnits"),
                               max_inference_units=d.get("MaxInferenceUnits"),
                               artifacts=d.get("artifacts", {}))
                async for d in docs]
    return Reply.success({"versions": [v.model_dump() for v in versions]})
