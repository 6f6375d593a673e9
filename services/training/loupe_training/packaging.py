"""Model packaging jobs (StartModelPackagingJob, DescribeModelPackagingJob, ListModelPackagingJobs):
a trained model version as an edge bundle and a Greengrass V2 component recipe in the job's S3
output location, as Lookout packaged its models for the edge.

They live in the training service because it owns model versions and their artifacts; a job is
long work like training (its own topic, loupe.packaging.jobs, replayed after a crash until final).

The bundle (`<component>-<version>.zip`) holds the model exactly as hosting runs it (model.onnx and
its sidecar model.json), the edge runtime's own code (`runtime/loupe_edge`, numpy + onnxruntime +
grpcio only), `manifest.json` (what the bundle is, which runtime runs it and what it needs, a SHA-256
of every file), and `recipe.json`. The bundle's facts (format, socket, layout) belong to
loupe_edge.bundle, the side that reads them. Beside the zip, the recipe is written on its own (the file a
Greengrass user deploys). Loupe's runtime is CPU onnxruntime on every target: an NVIDIA target's
compiler options are recorded in the manifest and not used.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import re
import zipfile
from datetime import UTC, datetime
from importlib import metadata
from typing import Protocol

import loupe_edge
from loupe_common import idempotency
from loupe_common.errors import ErrorCode, LoupeError, ResourceType, conflict, not_found
from loupe_common.messages import Reply
from loupe_common.pagination import decode_token, encode_token
from loupe_common.training_messages import (
    PACKAGING_CREATED,
    PACKAGING_FAILED,
    PACKAGING_RUNNING,
    PACKAGING_SUCCEEDED,
    DescribeModelPackagingJob,
    ListModelPackagingJobs,
    PackagingJob,
    StartModelPackagingJob,
    packaging_output,
)

from loupe_edge.bundle import (
    BUNDLE_FORMAT,
    EDGE_AGENT_SOCKET,
    RUNTIME_DIR,
    RUNTIME_REQUIREMENTS,
    runtime_files,
)

from .models import TRAINING, TRAINING_FAILED, project_datasets, resolve
from .store import TrainingState, model_id

RUNTIME = "loupe-edge"
DEFAULT_COMPONENT_VERSION = "1.0.0"
FINAL = {PACKAGING_SUCCEEDED, PACKAGING_FAILED}
GREENGRASS_ARCH = {"X86_64": "amd64", "ARM64": "aarch64"}


class Enqueue(Protocol):
    async def __call__(self, job: PackagingJob) -> None: ...


def _now() -> datetime:
    current = datetime.now(UTC)
    return current.replace(microsecond=current.microsecond // 1000 * 1000)


def _epoch(value: datetime) -> float:
    return round((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp(), 3)


def job_id_of(project_name: str, job_name: str) -> str:
    return f"{project_name}/{job_name}"


def default_job_name(project_name: str, version: str, at: datetime) -> str:
    return f"{re.sub(r'[^a-zA-Z0-9-]', '-', project_name)[:40]}-{version}-{at:%Y%m%d%H%M%S}"


def component_arn(state: TrainingState, name: str, version: str) -> str:
    s = state.settings
    return f"arn:aws:greengrass:{s.region}:{s.account_id}:components:{name}:versions:{version}"


def _summary(doc: dict) -> dict:
    """ModelPackagingJobMetadata (ListModelPackagingJobs)."""
    out = {"JobName": doc["job_name"], "ProjectName": doc["project_name"],
           "ModelVersion": doc["model_version"], "ModelPackagingMethod": "Greengrass",
           "Status": doc["status"], "StatusMessage": doc.get("status_message"),
           "CreationTimestamp": _epoch(doc["created_at"]), "LastUpdatedTimestamp": _epoch(doc["updated_at"])}
    if doc.get("description"):
        out["ModelPackagingJobDescription"] = doc["description"]
    return {k: v for k, v in out.items() if v is not None}


def _description(state: TrainingState, doc: dict) -> dict:
    """ModelPackagingDescription (DescribeModelPackagingJob)."""
    out = {**_summary(doc), "ModelPackagingConfiguration": doc["configuration"]}
    greengrass = doc["configuration"]["Greengrass"]
    if doc["status"] == PACKAGING_SUCCEEDED:
        name, version = greengrass["ComponentName"], greengrass["ComponentVersion"]
        out["ModelPackagingOutputDetails"] = {"Greengrass": {
            "ComponentVersionArn": component_arn(state, name, version), "ComponentName": name,
            "ComponentVersion": version}}
    return out


async def start_packaging_job(state: TrainingState, cmd: StartModelPackagingJob, enqueue: Enqueue) -> Reply:
    async def work() -> Reply:
        model = await resolve(state, cmd.project_name, cmd.model_version, cmd.request_id)
        if model["status"] in (TRAINING, TRAINING_FAILED) or not model.get("artifacts"):
            raise conflict(ResourceType.MODEL, model["_id"],
                           f"Model version {model['version']} is {model['status']}; only a trained model "
                           "version can be packaged")
        created = _now()
        version = str(model["version"])
        job_name = cmd.job_name or default_job_name(cmd.project_name, version, created)
        configuration = cmd.configuration.wire()
        configuration["Greengrass"].setdefault("ComponentVersion", DEFAULT_COMPONENT_VERSION)
        job_id = job_id_of(cmd.project_name, job_name)
        doc = {"_id": job_id, "project_name": cmd.project_name,
               "job_name": job_name, "model_version": version, "configuration": configuration,
               "description": cmd.description, "status": PACKAGING_CREATED,
               "status_message": "Waiting to be packaged", "job_id": cmd.request_id,
               "created_at": created, "updated_at": created}
        if await state.packaging_jobs.find_one({"_id": job_id}, {"_id": 1}):
            raise conflict(ResourceType.MODEL, job_id,
                           f"A model packaging job named {job_name} already exists in project "
                           f"{cmd.project_name}")
        await state.packaging_jobs.insert_one(doc)
        await enqueue(PackagingJob(job_id=cmd.request_id, project_name=cmd.project_name, job_name=job_name))
        return Reply.success({"JobName": job_name})

    params = cmd.model_dump(mode="json", exclude={"request_id", "client_token", "operation"})
    return await idempotency.once(state.db, cmd, params=params, resource_type=ResourceType.MODEL, work=work)


async def _job(state: TrainingState, project_name: str, job_name: str, request_id: str) -> dict:
    doc = await state.packaging_jobs.find_one({"_id": job_id_of(project_name, job_name)})
    if doc is None:
        await project_datasets(state, project_name, request_id)
        raise not_found(ResourceType.MODEL, job_id_of(project_name, job_name),
                        f"Model packaging job {job_name} of project {project_name} does not exist")
    return doc


async def describe_packaging_job(state: TrainingState, cmd: DescribeModelPackagingJob) -> Reply:
    doc = await _job(state, cmd.project_name, cmd.job_name, cmd.request_id)
    return Reply.success({"ModelPackagingDescription": _description(state, doc)})


async def list_packaging_jobs(state: TrainingState, cmd: ListModelPackagingJobs) -> Reply:
    await project_datasets(state, cmd.project_name, cmd.request_id)
    scope = f"ListModelPackagingJobs|{cmd.project_name}"
    query: dict = {"project_name": cmd.project_name}
    if cmd.next_token:
        query["_id"] = {"$gt": decode_token(scope, cmd.next_token)["after"]}
    docs = await state.packaging_jobs.find(query).sort("_id", 1).limit(cmd.max_results + 1).to_list(None)
    result: dict = {"ModelPackagingJobs": [_summary(d) for d in docs[: cmd.max_results]]}
    if len(docs) > cmd.max_results:
        result["NextToken"] = encode_token(scope, {"after": docs[cmd.max_results - 1]["_id"]})
    return Reply.success(result)


# --- the job ----------------------------------------------------------------------------------


async def run_packaging(state: TrainingState, job: PackagingJob) -> None:
    doc = await state.packaging_jobs.find_one({"_id": job_id_of(job.project_name, job.job_name)})
    if doc is None or doc["status"] in FINAL or doc.get("job_id") != job.job_id:
        return  # replayed after it finished, or superseded
    await _set(state, doc, PACKAGING_RUNNING, "Packaging the model version")
    try:
        message = await _package(state, doc)
    except Exception as exc:  # a job ends in a visible status, never hangs in RUNNING
        reason = exc.error.message if isinstance(exc, LoupeError) else f"{exc.__class__.__name__}: {exc}"
        await _set(state, doc, PACKAGING_FAILED, f"Packaging failed: {reason}"[:1024])
        return
    await _set(state, doc, PACKAGING_SUCCEEDED, message)


async def _set(state: TrainingState, doc: dict, status: str, message: str) -> None:
    await state.packaging_jobs.update_one({"_id": doc["_id"]}, {"$set": {
        "status": status, "status_message": message, "updated_at": _now()}})


async def _package(state: TrainingState, doc: dict) -> str:
    model = await state.models.find_one({"_id": model_id(doc["project_name"], doc["model_version"])})
    if model is None or not model.get("artifacts"):
        raise LoupeError(ErrorCode.CONFLICT,
                         f"model version {doc['model_version']} and its artifacts are gone")
    files = {f"model/{name}": await state.blobs.get(key) for name, key in sorted(model["artifacts"].items())
             if name in ("model.onnx", "model.json")}
    files |= runtime_files()
    bucket, bundle_key, recipe_key = packaging_output(doc["configuration"]["Greengrass"])
    uri = f"s3://{bucket}/{bundle_key}"
    manifest = bundle_manifest(doc, model, files)
    recipe = greengrass_recipe(doc, uri, None)
    bundle = await asyncio.to_thread(_zip, {**files, "manifest.json": _json(manifest),
                                            "recipe.json": _json(recipe)})
    # The recipe users deploy names the zip by its digest, so it is written after the zip exists.
    recipe = greengrass_recipe(doc, uri, hashlib.sha256(bundle).hexdigest())
    await asyncio.to_thread(state.buckets.write, bucket, bundle_key, bundle)
    await asyncio.to_thread(state.buckets.write, bucket, recipe_key, _json(recipe))
    greengrass = doc["configuration"]["Greengrass"]
    return (f"Packaged as Greengrass component {greengrass['ComponentName']} "
            f"{greengrass['ComponentVersion']}: {uri} ({len(bundle)} bytes) and its recipe.json")


def _json(value: dict) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True).encode()


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path, data in sorted(files.items()):
            info = zipfile.ZipInfo(path, date_time=(2020, 11, 20, 0, 0, 0))  # same bytes for the same model
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, data)
    return out.getvalue()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def bundle_manifest(doc: dict, model: dict, files: dict[str, bytes]) -> dict:
    greengrass = doc["configuration"]["Greengrass"]
    return {
        "format": BUNDLE_FORMAT,
        "project_name": doc["project_name"], "model_version": doc["model_version"], "model_arn": model["arn"],
        "component": {"name": greengrass["ComponentName"], "version": greengrass["ComponentVersion"]},
        "target": {k: greengrass[k] for k in ("TargetDevice", "TargetPlatform", "CompilerOptions")
                   if k in greengrass},
        "runtime": {"name": RUNTIME, "version": loupe_edge.__version__, "path": RUNTIME_DIR,
                    "requires": {name: _version(name) for name in RUNTIME_REQUIREMENTS},
                    "onnxruntime": _version("onnxruntime"), "numpy": _version("numpy"),
                    "execution": "CPU (onnxruntime CPUExecutionProvider) on every target"},
        "files": {path: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                  for path, data in sorted(files.items())},
    }


def greengrass_recipe(doc: dict, artifact_uri: str, digest_hex: str | None) -> dict:
    """A Greengrass V2 component recipe (JSON) that installs the bundle and runs the edge runtime
    on it, serving the Edge Agent's socket."""
    greengrass = doc["configuration"]["Greengrass"]
    # jetson_xavier: arm64 Linux
    platform = greengrass.get("TargetPlatform") or {"Os": "LINUX", "Arch": "ARM64"}
    artifact: dict = {"Uri": artifact_uri, "Unarchive": "ZIP"}
    if digest_hex:
        artifact |= {"Digest": base64.b64encode(bytes.fromhex(digest_hex)).decode(), "Algorithm": "SHA-256"}
    bundle_dir = "{artifacts:decompressedPath}/" + artifact_uri.rsplit("/", 1)[1].removesuffix(".zip")
    return {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": greengrass["ComponentName"],
        "ComponentVersion": greengrass["ComponentVersion"],
        "ComponentDescription": greengrass.get("ComponentDescription")
        or f"Loupe model {doc['project_name']} version {doc['model_version']} for the edge",
        "ComponentPublisher": "Loupe",
        "ComponentConfiguration": {"DefaultConfiguration": {"Socket": EDGE_AGENT_SOCKET}},
        "Manifests": [{
            "Platform": {"os": platform["Os"].lower(), "architecture": GREENGRASS_ARCH[platform["Arch"]]},
            "Lifecycle": {
                "Install": "python3 -m pip install --user " + " ".join(f"{name}=={_version(name)}"
                                                                       for name in RUNTIME_REQUIREMENTS),
                "Run": f"PYTHONPATH={bundle_dir}/{RUNTIME_DIR} python3 -m loupe_edge serve "
                       f"--models {bundle_dir} "
                       "--socket {configuration:/Socket} --start all",
            },
            "Artifacts": [artifact],
        }],
    }
