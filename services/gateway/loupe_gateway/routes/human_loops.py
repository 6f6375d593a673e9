"""The A2I runtime API (2019-11-07, rest-json, SigV4 service `sagemaker`): StartHumanLoop,
DescribeHumanLoop, ListHumanLoops, StopHumanLoop, DeleteHumanLoop. /human-loops/stop is declared
before /human-loops/{name} so "stop" is never taken for a loop name."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from loupe_common import human_loop_messages as m
from loupe_common.access_keys import Area
from loupe_common.errors import validation
from loupe_common.topics import HUMAN_LOOP_COMMANDS

from ..auth import signed_body
from ..bodies import parse_json_object
from ..context import GatewayDep, RequestId
from ..responses import reply_response
from ..validation import build

# InputContent may be 3,145,728 characters, each up to 6 bytes once JSON-escaped (\uXXXX).
BODY_LIMIT = m.MAX_INPUT_CONTENT * 6 + 64 * 1024
A2I_SERVICES = frozenset({"sagemaker"})

_body = signed_body(BODY_LIMIT, A2I_SERVICES, Area.REVIEW)
router = APIRouter(dependencies=[Depends(_body)])
Body = Annotated[bytes, Depends(_body)]


async def to_human_loops(gw: GatewayDep, cmd: Any, key: str) -> JSONResponse:
    return reply_response(await gw.rpc.request(HUMAN_LOOP_COMMANDS, cmd, key=key))


def _timestamp(value: str | None, name: str) -> datetime | None:
    """ISO 8601, date-only accepted (2020-02-24 is midnight UTC)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise validation(f"{name} must be an ISO 8601 timestamp such as 2020-02-24 or "
                         f"2020-02-24T10:00:00Z, not '{value[:64]}'") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _object(fields: dict[str, Any], name: str) -> dict[str, Any]:
    value = fields.get(name)
    if value is not None and not isinstance(value, dict):
        raise validation(f"{name} must be an object")
    return value or {}


@router.post("/human-loops")
async def start_human_loop(gw: GatewayDep, rid: RequestId, body: Body):
    fields = parse_json_object(body)
    classifiers = (_object(fields, "DataAttributes").get("ContentClassifiers") if "DataAttributes" in fields
                   else None)
    if "DataAttributes" in fields and classifiers is None:
        raise validation("Value null at 'dataAttributes.contentClassifiers' failed to satisfy constraint: "
                         "Member must not be null")
    cmd = build(m.StartHumanLoop, request_id=rid, human_loop_name=fields.get("HumanLoopName"),
                flow_definition_arn=fields.get("FlowDefinitionArn"),
                input_content=_object(fields, "HumanLoopInput").get("InputContent"),
                content_classifiers=classifiers)
    encoded = cmd.input_content.encode()
    if len(encoded) > gw.settings.claim_check_bytes:  # up to 12 MB in UTF-8: too big for one record
        key = f"transfer/human-loop-input/{uuid.uuid4().hex}"
        await gw.blobs.put(key, encoded)
        cmd = cmd.model_copy(update={"input_content": "", "input_content_key": key})
        try:
            return await to_human_loops(gw, cmd, cmd.human_loop_name)
        finally:
            await gw.blobs.delete(key)
    return await to_human_loops(gw, cmd, cmd.human_loop_name)


@router.get("/human-loops")
async def list_human_loops(gw: GatewayDep, rid: RequestId, request: Request):
    q = request.query_params
    cmd = build(m.ListHumanLoops, request_id=rid, flow_definition_arn=q.get("FlowDefinitionArn"),
                creation_time_after=_timestamp(q.get("CreationTimeAfter"), "CreationTimeAfter"),
                creation_time_before=_timestamp(q.get("CreationTimeBefore"), "CreationTimeBefore"),
                sort_order=q.get("SortOrder"), max_results=q.get("MaxResults"), next_token=q.get("NextToken"))
    return await to_human_loops(gw, cmd, m.flow_name_of(cmd.flow_definition_arn))


@router.post("/human-loops/stop")
async def stop_human_loop(gw: GatewayDep, rid: RequestId, body: Body):
    fields = parse_json_object(body)
    cmd = build(m.StopHumanLoop, request_id=rid, human_loop_name=fields.get("HumanLoopName"))
    return await to_human_loops(gw, cmd, cmd.human_loop_name)


@router.get("/human-loops/{human_loop_name}")
async def describe_human_loop(gw: GatewayDep, rid: RequestId, human_loop_name: str):
    cmd = build(m.DescribeHumanLoop, request_id=rid, human_loop_name=human_loop_name)
    return await to_human_loops(gw, cmd, cmd.human_loop_name)


@router.delete("/human-loops/{human_loop_name}")
async def delete_human_loop(gw: GatewayDep, rid: RequestId, human_loop_name: str):
    cmd = build(m.DeleteHumanLoop, request_id=rid, human_loop_name=human_loop_name)
    return await to_human_loops(gw, cmd, cmd.human_loop_name)
