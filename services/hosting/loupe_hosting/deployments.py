"""StartModel, StopModel and ResolveDeployment. The training service keeps each version's status
(DescribeModel reads it there); this service decides what runs where and moves that status through
SetHostingStatus, which applies a move only from the statuses it allows."""

from __future__ import annotations

from loupe_common import idempotency
from loupe_common import training_messages as tm
from loupe_common.errors import ErrorCode, LoupeError, ResourceType, conflict
from loupe_common.hosting_messages import (
    HOSTED,
    HOSTING_FAILED,
    STARTING,
    STOPPING,
    TRAINED,
    DescribeHosting,
    ResolveDeployment,
    StartModel,
    StopModel,
)
from loupe_common.kafka import ensure_topics
from loupe_common.messages import Command, Reply
from loupe_common.topics import TRAINING_COMMANDS, model_key, model_request_topic

from .autoscale import Autoscaler
from .store import HostingState


async def set_status(state: HostingState, cmd: Command, project: str, version: str, status: str,
                     from_statuses: list[str], message: str, units: tuple[int, int | None] | None = None,
                     hint: str = "") -> dict:
    request = tm.SetHostingStatus(
        request_id=cmd.request_id, project_name=project, model_version=version, status=status,
        from_statuses=from_statuses, status_message=message, conflict_hint=hint,
        min_inference_units=units[0] if units else None, max_inference_units=units[1] if units else None,
    )
    return (await state.training.request(TRAINING_COMMANDS, request, key=project)).unwrap()


async def _version(state: HostingState,
                   cmd: StartModel | StopModel | ResolveDeployment | DescribeHosting) -> str:
    """The version number (`latest` resolved by the training service, which also 404s unknown ones)."""
    if cmd.model_version != "latest":
        return cmd.model_version
    described = (await state.training.request(TRAINING_COMMANDS, tm.DescribeModel(
        request_id=cmd.request_id, project_name=cmd.project_name, model_version="latest"),
        key=cmd.project_name)).unwrap()
    return described["ModelDescription"]["ModelVersion"]


def deployment(project: str, version: str, status: str, units: tuple[int, int | None],
               artifacts: dict[str, str], message: str) -> dict:
    """A deployment document: what hosting runs for one model version, and where its requests go."""
    return {
        "_id": model_key(project, version), "project_name": project, "model_version": version,
        "status": status,
        "min_units": units[0], "max_units": units[1], "units": units[0],
        "topic": model_request_topic(project, version),
        "artifacts": {name: artifacts[name] for name in ("model.onnx", "model.json")},
        "status_message": message,
    }


def wanted_units(doc: dict) -> int:
    """Units the deployment runs now: the autoscaler's choice, else MinInferenceUnits."""
    return doc.get("units") or doc["min_units"]


def units_text(units: int) -> str:
    return f"{units} inference unit{'s' if units != 1 else ''}"


async def start_model(state: HostingState, cmd: StartModel) -> Reply:
    async def work() -> Reply:
        limit = state.settings.inference_unit_limit
        if max(cmd.min_inference_units, cmd.max_inference_units or 0) > limit:
            raise LoupeError(ErrorCode.QUOTA_EXCEEDED,
                             f"This installation allows at most {limit} inference units per model version",
                             quota_code="L-LOUPE-INFERENCE-UNITS")
        version = await _version(state, cmd)
        key = model_key(cmd.project_name, version)
        units = (cmd.min_inference_units, cmd.max_inference_units)
        current = await state.deployments.find_one({"_id": key})
        if current is not None and current["status"] in (STARTING, HOSTED):
            if (current["min_units"], current.get("max_units")) == units:
                raise conflict(ResourceType.MODEL, f"{cmd.project_name}/{version}",
                               f"Model version {version} is already {current['status']} with "
                               f"{units_text(units[0])}")
            # A resize: the running units keep serving while units are added or removed.
            message = f"Resizing to {units_text(units[0])}"
            moved = await set_status(state, cmd, cmd.project_name, version, current["status"],
                                     [current["status"]], message, units, hint="; try again")
            now_running = max(units[0], min(wanted_units(current), units[1] or units[0]))
            await state.deployments.update_one({"_id": key}, {"$set": {
                "min_units": units[0], "max_units": units[1], "units": now_running,
                "status_message": message}})
            return Reply.success({"Status": moved["Status"]}, status=202)
        message = f"Starting on {units_text(units[0])}"
        moved = await set_status(state, cmd, cmd.project_name, version, STARTING, [TRAINED, HOSTING_FAILED],
                                 message, units, hint="; only a TRAINED model version can be started")
        doc = deployment(cmd.project_name, version, STARTING, units, moved["artifacts"], message)
        await ensure_topics(state.settings, [(doc["topic"], state.settings.topic_partitions)])
        await state.deployments.replace_one({"_id": key}, doc, upsert=True)
        return Reply.success({"Status": STARTING}, status=202)

    params = cmd.model_dump(mode="json", exclude={"request_id", "client_token", "operation"})
    return await idempotency.once(state.db, cmd, params=params, resource_type=ResourceType.MODEL, work=work)


async def stop_model(state: HostingState, cmd: StopModel) -> Reply:
    async def work() -> Reply:
        version = await _version(state, cmd)
        key = model_key(cmd.project_name, version)
        await set_status(state, cmd, cmd.project_name, version, STOPPING, [STARTING, HOSTED, HOSTING_FAILED],
                         "Stopping: the inference units finish their requests and unload the model",
                         hint="; only a hosted (or starting) model can be stopped")
        await state.deployments.update_one({"_id": key}, {"$set": {
            "status": STOPPING, "project_name": cmd.project_name, "model_version": version}}, upsert=True)
        return Reply.success({"Status": STOPPING}, status=202)

    params = {"ProjectName": cmd.project_name, "ModelVersion": cmd.model_version}
    return await idempotency.once(state.db, cmd, params=params, resource_type=ResourceType.MODEL, work=work)


async def resolve_deployment(state: HostingState, cmd: ResolveDeployment) -> Reply:
    version = await _version(state, cmd)
    key = model_key(cmd.project_name, version)
    current = await state.deployments.find_one({"_id": key})
    if current is not None and current["status"] == HOSTED:
        return Reply.success({"model_key": key, "topic": current["topic"]})
    described = (await state.training.request(TRAINING_COMMANDS, tm.DescribeModel(
        request_id=cmd.request_id, project_name=cmd.project_name, model_version=version),
        key=cmd.project_name)).unwrap()["ModelDescription"]
    raise conflict(ResourceType.MODEL, f"{cmd.project_name}/{version}",
                   f"Model version {version} is {described['Status']}, not HOSTED; start it with StartModel "
                   "and wait for HOSTED")


async def describe_hosting(state: HostingState, cmd: DescribeHosting, autoscaler: Autoscaler) -> Reply:
    """The version's units now: wanted (the autoscaler's choice), serving, and how busy they are."""
    version = await _version(state, cmd)
    key = model_key(cmd.project_name, version)
    doc = await state.deployments.find_one({"_id": key})
    if doc is None:
        return Reply.success({"ModelVersion": version, "Status": None, "ServingUnits": 0, "Units": []})
    ready = state.fleet.ready_units(key)
    history = autoscaler.history.get(key)
    return Reply.success({
        "ModelVersion": version, "Status": doc["status"], "MinInferenceUnits": doc.get("min_units"),
        "MaxInferenceUnits": doc.get("max_units") or doc.get("min_units"), "WantedUnits": wanted_units(doc),
        "ServingUnits": len(ready), "BusyShare": round(history.busy, 4) if history else 0.0,
        "Units": [{"Worker": w, "Busy": round(state.fleet.heartbeats[w].models[key].busy, 4)} for w in ready],
    })
