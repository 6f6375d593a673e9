"""Loupe-native model routes (AILabTools envelope): a trained version's evaluation summary, its
artifacts (the ONNX model, its sidecar, the evaluation manifest/result, the HTML report), its
inference units as they are now, and a finished packaging job's edge bundle (`loupe model package`
downloads it: the job's S3 output location may be a bucket only the server reaches)."""

from __future__ import annotations


import asyncio

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from loupe_common import hosting_messages as hm
from loupe_common import training_messages as tm
from loupe_common.blobs import BlobNotFound
from loupe_common.buckets import BucketError
from loupe_common.errors import AilabError, ailab_envelope
from loupe_common.topics import HOSTING_COMMANDS, TRAINING_COMMANDS

from ..auth import signed_body
from ..context import GatewayDep, RequestId
from ..validation import build

MAX_BUNDLE_BYTES = 1 << 30
router = APIRouter(prefix="/loupe/v1", dependencies=[Depends(signed_body(0))])
MEDIA_TYPES = {
    "model.onnx": "application/octet-stream",
    "model.json": "application/json",
    "evaluation-manifest.jsonl": "application/x-ndjson",
    "evaluation-result.json": "application/json",
    "report.html": "text/html; charset=utf-8",
}


async def _artifacts(gw: GatewayDep, rid: str, project_name: str, model_version: str) -> dict:
    cmd = build(tm.GetModelArtifacts, request_id=rid, project_name=project_name, model_version=model_version)
    return (await gw.rpc.request(TRAINING_COMMANDS, cmd, key=project_name)).unwrap()


@router.get("/projects/{project_name}/models/{model_version}/evaluation")
async def evaluation(gw: GatewayDep, rid: RequestId, project_name: str, model_version: str) -> JSONResponse:
    found = await _artifacts(gw, rid, project_name, model_version)
    base = f"/loupe/v1/projects/{project_name}/models/{found['model_version']}/artifacts/"
    data = {**found["evaluation"], "model_version": found["model_version"], "status": found["status"],
            "artifacts": {name: base + name for name in found["artifacts"]}}
    status, body = ailab_envelope(request_id=rid, data=data)
    return JSONResponse(body, status_code=status)


@router.get("/projects/{project_name}/models/{model_version}/artifacts/{name}")
async def artifact(gw: GatewayDep, rid: RequestId, project_name: str, model_version: str,
                   name: str) -> Response:
    if name not in MEDIA_TYPES:
        raise AilabError("ERROR_FILE_NOT_FOUND",
                         f"No artifact named {name}; one of: {', '.join(MEDIA_TYPES)}")
    found = await _artifacts(gw, rid, project_name, model_version)
    try:
        content = await gw.blobs.get(found["artifacts"][name])
    except (BlobNotFound, KeyError):
        raise AilabError("ERROR_FILE_NOT_FOUND",
                         f"{name} of model version {found['model_version']} is missing") from None
    return Response(content, media_type=MEDIA_TYPES[name])


@router.get("/projects/{project_name}/models/{model_version}/hosting")
async def hosting(gw: GatewayDep, rid: RequestId, project_name: str, model_version: str) -> JSONResponse:
    cmd = build(hm.DescribeHosting, request_id=rid, project_name=project_name, model_version=model_version)
    found = (await gw.rpc.request(HOSTING_COMMANDS, cmd, key=project_name)).unwrap()
    status, body = ailab_envelope(request_id=rid, data=found)
    return JSONResponse(body, status_code=status)


@router.get("/projects/{project_name}/packaging-jobs/{job_name}/bundle")
async def packaging_bundle(gw: GatewayDep, rid: RequestId, project_name: str, job_name: str) -> Response:
    cmd = build(tm.DescribeModelPackagingJob, request_id=rid, project_name=project_name, job_name=job_name)
    job = (await gw.rpc.request(TRAINING_COMMANDS, cmd,
                                key=project_name)).unwrap()["ModelPackagingDescription"]
    if job["Status"] != tm.PACKAGING_SUCCEEDED:
        raise AilabError("ERROR_TASK_CONFLICT", f"packaging job {job_name} is {job['Status']}; "
                         "its bundle exists once it has SUCCEEDED")
    bucket, key, _ = tm.packaging_output(job["ModelPackagingConfiguration"]["Greengrass"])
    try:
        content = await asyncio.to_thread(gw.buckets.read, bucket, key, max_bytes=MAX_BUNDLE_BYTES)
    except BucketError as error:
        raise AilabError("ERROR_FILE_NOT_FOUND",
                         f"the bundle of {job_name} is gone from s3://{bucket}/{key}: {error}") from None
    return Response(content, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{key.rsplit("/", 1)[-1]}"'})
