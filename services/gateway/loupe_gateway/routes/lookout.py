"""Lookout for Vision (2020-11-20) control-plane routes: projects, datasets, dataset entries, tags.

Each route checks the request against the reference's constraints, turns it into a typed command
and returns the owning service's reply.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from loupe_common import dataset_messages as dm
from loupe_common import hosting_messages as hm
from loupe_common import training_messages as tm
from loupe_common.arn import ResourceArn, parse_arn
from loupe_common.errors import ResourceType, validation
from loupe_common.lookout import MAX_DATASET_CHANGES_BYTES, MAX_TAGS
from loupe_common.messages import Command
from loupe_common.topics import DATASET_COMMANDS, HOSTING_COMMANDS, TRAINING_COMMANDS

from ..auth import signed_body
from ..bodies import parse_json_object
from ..context import GatewayDep, RequestId
from ..responses import reply_response
from ..validation import build

# UpdateDatasetEntries carries up to 10 MiB base64-encoded inside JSON.
JSON_BODY_LIMIT = MAX_DATASET_CHANGES_BYTES * 4 // 3 + 64 * 1024

_authenticated_body = signed_body(JSON_BODY_LIMIT)
# Every route is authenticated; routes with a body receive it (FastAPI runs the check once).
router = APIRouter(prefix="/2020-11-20", dependencies=[Depends(_authenticated_body)])
Body = Annotated[bytes, Depends(_authenticated_body)]
ClientTokenHeader = Annotated[str | None, Header(alias="X-Amzn-Client-Token")]


async def to_dataset_service(gw: GatewayDep, cmd: dm.Command, key: str) -> JSONResponse:
    return reply_response(await gw.rpc.request(DATASET_COMMANDS, cmd, key=key))


# --- projects ---------------------------------------------------------------------------------


@router.post("/projects")
async def create_project(gw: GatewayDep, rid: RequestId, body: Body, token: ClientTokenHeader = None):
    fields = parse_json_object(body)
    cmd = build(dm.CreateProject, request_id=rid, client_token=token, project_name=fields.get("ProjectName"))
    return await to_dataset_service(gw, cmd, cmd.project_name)


@router.get("/projects")
async def list_projects(gw: GatewayDep, rid: RequestId, request: Request):
    q = request.query_params
    cmd = build(
        dm.ListProjects,
        request_id=rid,
        max_results=q.get("maxResults", 100),
        next_token=q.get("nextToken"),
    )
    return await to_dataset_service(gw, cmd, "list-projects")


@router.get("/projects/{project_name}")
async def describe_project(gw: GatewayDep, rid: RequestId, project_name: str):
    cmd = build(dm.DescribeProject, request_id=rid, project_name=project_name)
    return await to_dataset_service(gw, cmd, project_name)


@router.delete("/projects/{project_name}")
async def delete_project(gw: GatewayDep, rid: RequestId, project_name: str, token: ClientTokenHeader = None):
    cmd = build(dm.DeleteProject, request_id=rid, client_token=token, project_name=project_name)
    return await to_dataset_service(gw, cmd, project_name)


# --- datasets ---------------------------------------------------------------------------------


@router.post("/projects/{project_name}/datasets")
async def create_dataset(
    gw: GatewayDep, rid: RequestId, project_name: str, body: Body, token: ClientTokenHeader = None
):
    fields = parse_json_object(body)
    cmd = build(
        dm.CreateDataset,
        request_id=rid,
        client_token=token,
        project_name=project_name,
        dataset_type=fields.get("DatasetType"),
        dataset_source=fields.get("DatasetSource"),
    )
    return await to_dataset_service(gw, cmd, project_name)


@router.get("/projects/{project_name}/datasets/{dataset_type}")
async def describe_dataset(gw: GatewayDep, rid: RequestId, project_name: str, dataset_type: str):
    cmd = build(dm.DescribeDataset, request_id=rid, project_name=project_name, dataset_type=dataset_type)
    return await to_dataset_service(gw, cmd, project_name)


@router.delete("/projects/{project_name}/datasets/{dataset_type}")
async def delete_dataset(
    gw: GatewayDep, rid: RequestId, project_name: str, dataset_type: str, token: ClientTokenHeader = None
):
    cmd = build(
        dm.DeleteDataset, request_id=rid, client_token=token, project_name=project_name,
        dataset_type=dataset_type,
    )
    return await to_dataset_service(gw, cmd, project_name)


def _timestamp(name: str, raw: str | None) -> datetime | None:
    """Query timestamps arrive as ISO 8601 (botocore: 2020-06-23T00:00:00Z) or epoch seconds."""
    if raw is None:
        return None
    try:
        value = (datetime.fromtimestamp(float(raw), UTC) if raw.replace(".", "", 1).isdigit()
                 else datetime.fromisoformat(raw))
    except (ValueError, OverflowError):
        raise validation(f"Value '{raw}' at '{name}' failed to satisfy constraint: "
                         "Member must be a timestamp") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _boolean(name: str, raw: str | None) -> bool | None:
    if raw is None:
        return None
    if raw.lower() not in ("true", "false"):
        raise validation(f"Value '{raw}' at '{name}' failed to satisfy constraint: "
                         "Member must be true or false")
    return raw.lower() == "true"


@router.get("/projects/{project_name}/datasets/{dataset_type}/entries")
async def list_dataset_entries(
    gw: GatewayDep, rid: RequestId, request: Request, project_name: str, dataset_type: str
):
    q = request.query_params
    cmd = build(
        dm.ListDatasetEntries,
        request_id=rid,
        project_name=project_name,
        dataset_type=dataset_type,
        labeled=_boolean("labeled", q.get("labeled")),
        anomaly_class=q.get("anomalyClass"),
        created_before=_timestamp("createdBefore", q.get("createdBefore")),
        created_after=_timestamp("createdAfter", q.get("createdAfter")),
        source_ref_contains=q.get("sourceRefContains"),
        max_results=q.get("maxResults", 100),
        next_token=q.get("nextToken"),
    )
    return await to_dataset_service(gw, cmd, project_name)


@router.patch("/projects/{project_name}/datasets/{dataset_type}/entries")
async def update_dataset_entries(
    gw: GatewayDep, rid: RequestId, project_name: str, dataset_type: str, body: Body,
    token: ClientTokenHeader = None,
):
    fields = parse_json_object(body)
    encoded = fields.get("Changes")
    if not isinstance(encoded, str) or not encoded:
        raise validation("Value null at 'changes' failed to satisfy constraint: Member must not be null")
    try:
        changes = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise validation("'changes' must be base64-encoded JSON Lines") from None
    if not changes:
        raise validation("'changes' failed to satisfy constraint: "
                         "Member must have length greater than or equal to 1")
    if len(changes) > MAX_DATASET_CHANGES_BYTES:
        raise validation(
            "'changes' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_DATASET_CHANGES_BYTES}"
        )
    # Validate the addressing before storing anything, then hand the changes over by claim check.
    build(dm.DescribeDataset, request_id=rid, project_name=project_name, dataset_type=dataset_type)
    changes_key = f"transfer/changes/{uuid.uuid4().hex}.jsonl"
    await gw.blobs.put(changes_key, changes)
    cmd = build(
        dm.UpdateDatasetEntries,
        request_id=rid,
        client_token=token,
        project_name=project_name,
        dataset_type=dataset_type,
        changes_key=changes_key,
        changes_sha256=hashlib.sha256(changes).hexdigest(),
    )
    return await to_dataset_service(gw, cmd, project_name)


# --- tags -------------------------------------------------------------------------------------


def _resource_arn(gw: GatewayDep, request: Request):
    """The ARN comes fully percent-encoded (%2F included): take it from the raw path."""
    raw = request.scope["raw_path"].decode("latin-1")
    arn = unquote(raw.split("/tags/", 1)[1])
    if not 1 <= len(arn) <= 1011:
        raise validation("Value at 'resourceArn' failed to satisfy constraint: "
                         "Member must have length between 1 and 1011")
    return parse_arn(gw.settings, arn)


async def _to_owner(gw: GatewayDep, rid: str, target: ResourceArn, project_cls: type[Command],
                    model_cls: type[Command], **fields) -> JSONResponse:
    """Project tags live with the dataset service, model tags with the training service."""
    if target.resource_type is ResourceType.PROJECT:
        topic, cmd = DATASET_COMMANDS, build(project_cls, request_id=rid, project_name=target.project_name,
                                             **fields)
    else:
        topic, cmd = TRAINING_COMMANDS, build(
            model_cls, request_id=rid, project_name=target.project_name, model_version=target.model_version,
            **fields,
        )
    return reply_response(await gw.rpc.request(topic, cmd, key=target.project_name))


def _check_count(name: str, values: list) -> None:
    if len(values) > MAX_TAGS:
        raise validation(
            f"Value at '{name}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_TAGS}"
        )


@router.post("/tags/{resource_arn:path}")
async def tag_resource(gw: GatewayDep, rid: RequestId, request: Request, body: Body):
    target = _resource_arn(gw, request)
    tags = parse_json_object(body).get("Tags")
    _check_count("tags", tags if isinstance(tags, list) else [])
    return await _to_owner(gw, rid, target, dm.TagProject, tm.TagModel, tags=tags)


@router.delete("/tags/{resource_arn:path}")
async def untag_resource(gw: GatewayDep, rid: RequestId, request: Request):
    target = _resource_arn(gw, request)
    keys = request.query_params.getlist("tagKeys")
    _check_count("tagKeys", keys)
    return await _to_owner(gw, rid, target, dm.UntagProject, tm.UntagModel, tag_keys=keys)


@router.get("/tags/{resource_arn:path}")
async def list_tags_for_resource(gw: GatewayDep, rid: RequestId, request: Request):
    target = _resource_arn(gw, request)
    return await _to_owner(gw, rid, target, dm.ListProjectTags, tm.ListModelTags)


# --- models -----------------------------------------------------------------------------------


async def to_training_service(gw: GatewayDep, cmd: tm.Command, key: str) -> JSONResponse:
    return reply_response(await gw.rpc.request(TRAINING_COMMANDS, cmd, key=key))


@router.post("/projects/{project_name}/models")
async def create_model(gw: GatewayDep, rid: RequestId, project_name: str, body: Body,
                       token: ClientTokenHeader = None):
    fields = parse_json_object(body)
    tags = fields.get("Tags")
    if isinstance(tags, list):
        _check_count("tags", tags)
    cmd = build(
        tm.CreateModel, request_id=rid, client_token=token, project_name=project_name,
        description=fields.get("Description"), output_config=fields.get("OutputConfig"),
        kms_key_id=fields.get("KmsKeyId"), tags=tags,
    )
    return await to_training_service(gw, cmd, project_name)


@router.get("/projects/{project_name}/models")
async def list_models(gw: GatewayDep, rid: RequestId, request: Request, project_name: str):
    q = request.query_params
    cmd = build(tm.ListModels, request_id=rid, project_name=project_name,
                max_results=q.get("maxResults", 100), next_token=q.get("nextToken"))
    return await to_training_service(gw, cmd, project_name)


@router.get("/projects/{project_name}/models/{model_version}")
async def describe_model(gw: GatewayDep, rid: RequestId, project_name: str, model_version: str):
    cmd = build(tm.DescribeModel, request_id=rid, project_name=project_name, model_version=model_version)
    return await to_training_service(gw, cmd, project_name)


@router.delete("/projects/{project_name}/models/{model_version}")
async def delete_model(gw: GatewayDep, rid: RequestId, project_name: str, model_version: str,
                       token: ClientTokenHeader = None):
    cmd = build(tm.DeleteModel, request_id=rid, client_token=token, project_name=project_name,
                model_version=model_version)
    return await to_training_service(gw, cmd, project_name)


# --- hosting (the hosting service) ------------------------------------------------------------


@router.post("/projects/{project_name}/models/{model_version}/start")
async def start_model(gw: GatewayDep, rid: RequestId, project_name: str, model_version: str, body: Body,
                      token: ClientTokenHeader = None):
    fields = parse_json_object(body)
    cmd = build(hm.StartModel, request_id=rid, client_token=token, project_name=project_name,
                model_version=model_version, min_inference_units=fields.get("MinInferenceUnits"),
                max_inference_units=fields.get("MaxInferenceUnits"))
    return reply_response(await gw.rpc.request(HOSTING_COMMANDS, cmd, key=project_name))


@router.post("/projects/{project_name}/models/{model_version}/stop")
async def stop_model(gw: GatewayDep, rid: RequestId, project_name: str, model_version: str,
                     token: ClientTokenHeader = None):
    cmd = build(hm.StopModel, request_id=rid, client_token=token, project_name=project_name,
                model_version=model_version)
    return reply_response(await gw.rpc.request(HOSTING_COMMANDS, cmd, key=project_name))


# --- model packaging (the training service) ---------------------------------------------------


@router.post("/projects/{project_name}/modelpackagingjobs")
async def start_model_packaging_job(gw: GatewayDep, rid: RequestId, project_name: str, body: Body,
                                    token: ClientTokenHeader = None):
    fields = parse_json_object(body)
    cmd = build(tm.StartModelPackagingJob, request_id=rid, client_token=token, project_name=project_name,
                model_version=fields.get("ModelVersion"), job_name=fields.get("JobName"),
                configuration=fields.get("Configuration"), description=fields.get("Description"))
    return await to_training_service(gw, cmd, project_name)


@router.get("/projects/{project_name}/modelpackagingjobs")
async def list_model_packaging_jobs(gw: GatewayDep, rid: RequestId, request: Request, project_name: str):
    q = request.query_params
    cmd = build(tm.ListModelPackagingJobs, request_id=rid, project_name=project_name,
                max_results=q.get("maxResults", 100), next_token=q.get("nextToken"))
    return await to_training_service(gw, cmd, project_name)


@router.get("/projects/{project_name}/modelpackagingjobs/{job_name}")
async def describe_model_packaging_job(gw: GatewayDep, rid: RequestId, project_name: str, job_name: str):
    cmd = build(tm.DescribeModelPackagingJob, request_id=rid, project_name=project_name, job_name=job_name)
    return await to_training_service(gw, cmd, project_name)
