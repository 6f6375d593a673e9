"""Flow definitions (Loupe-native routes): how a loop is reviewed, where its output goes, which
detections start one, and whether answers go back into the project's dataset."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from loupe_common import human_loop_messages as m
from loupe_common.errors import ErrorCode, LoupeError
from loupe_common.messages import Reply

from .loops import iso
from .store import HumanLoopState, now


def describe_body(flow: dict[str, Any], counts: dict[str, int] | None = None) -> dict[str, Any]:
    body = {**flow["spec"], "FlowDefinitionArn": flow["arn"], "FlowDefinitionStatus": "Active",
            "CreationTime": iso(flow["created_at"])}
    if counts is not None:
        body["HumanLoopCounts"] = counts
    return body


async def _counts(state: HumanLoopState, name: str) -> dict[str, int]:
    counts = {status: 0 for status in (m.IN_PROGRESS, m.STOPPING, m.COMPLETED, m.FAILED, m.STOPPED)}
    async for loop in state.loops.find({"flow_name": name}, {"status": 1}):
        counts[loop["status"]] += 1
    return counts


async def create(state: HumanLoopState, cmd: m.CreateFlowDefinition) -> Reply:
    spec = cmd.spec.model_dump(exclude_none=True, mode="json")
    spec.setdefault("OutputConfig", {"S3OutputPath": f"s3://{state.settings.human_loop_bucket}"})
    name = cmd.spec.FlowDefinitionName
    flow = {"_id": name, "arn": state.flow_arn(name), "spec": spec, "created_at": now()}
    existing = await state.flows.find_one({"_id": name})
    if existing is not None:
        if existing["spec"] == spec:
            return Reply.success(describe_body(existing))
        raise LoupeError(ErrorCode.CONFLICT, f"Flow definition {name} already exists with other settings; "
                         "delete it first or pick another name")
    await state.flows.insert_one(flow)
    state.activations_changed()
    return Reply.success(describe_body(flow))


async def get_flow(state: HumanLoopState, name: str) -> dict[str, Any]:
    flow = await state.flows.find_one({"_id": name})
    if flow is None:
        raise LoupeError(ErrorCode.NOT_FOUND, f"Flow definition {name} does not exist")
    return flow


async def describe(state: HumanLoopState, cmd: m.DescribeFlowDefinition) -> Reply:
    flow = await get_flow(state, cmd.flow_definition_name)
    return Reply.success(describe_body(flow, await _counts(state, flow["_id"])))


async def list_flows(state: HumanLoopState, cmd: m.ListFlowDefinitions) -> Reply:
    flows = await state.flows.find({}).sort("_id", 1).to_list(length=None)
    return Reply.success({"FlowDefinitions": [describe_body(f) for f in flows]})


async def delete(state: HumanLoopState, cmd: m.DeleteFlowDefinition) -> Reply:
    flow = await get_flow(state, cmd.flow_definition_name)
    active = await state.loops.count_documents({"flow_name": flow["_id"], "status": {"$in": list(m.ACTIVE)}})
    if active:
        raise LoupeError(ErrorCode.CONFLICT, f"Flow definition {flow['_id']} has {active} active human "
                         "loops; stop them first")
    await state.flows.delete_one({"_id": flow["_id"]})
    state.activations_changed()
    return Reply.success({})


async def activation_table(state: HumanLoopState, generation: int) -> m.ActivationTable:
    rules = []
    async for flow in state.flows.find({"spec.HumanLoopActivationConfig": {"$exists": True}}):
        config = flow["spec"]["HumanLoopActivationConfig"]
        rules.append(m.ActivationRule(
            flow_definition_name=flow["_id"], flow_definition_arn=flow["arn"],
            project_name=config["ProjectName"], model_version=config.get("ModelVersion"),
            conditions=m.ActivationConditions.model_validate(config["HumanLoopActivationConditions"])))
    # A version's own flow definition comes before the project-wide ones (the first match starts the loop).
    rules.sort(key=lambda r: (r.model_version is None, r.flow_definition_name))
    return m.ActivationTable(generation=generation, sent_at=datetime.now(UTC), rules=rules)
