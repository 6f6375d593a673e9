"""The A2I runtime operations (StartHumanLoop, DescribeHumanLoop, ListHumanLoops, StopHumanLoop,
DeleteHumanLoop) and the loop lifecycle they share with the review page and the sweeper.

Every status change goes through `move`, a conditional update on (status, rev), so two handlers
racing on one loop cannot both win, and every change is published to loupe.humanloop.events.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from loupe_common import human_loop_messages as m
from loupe_common import json_bodies
from loupe_common.buckets import BucketError
from loupe_common.errors import ErrorCode, LoupeError, validation
from loupe_common.images import MAX_IMAGE_BYTES, ImageRejected, inspect_image
from loupe_common.messages import Reply
from loupe_common.pagination import decode_token, encode_token

from .store import HumanLoopState, now

IMAGE_FIELDS = ("taskObject", "image")  # where a caller's InputContent may name its image


def not_found(name: str) -> LoupeError:
    return LoupeError(ErrorCode.NOT_FOUND, f"Human loop {name} does not exist")


def iso(value: datetime) -> str:
    """A2I timestamps as ISO-8601 strings (the JS SDK refuses epoch numbers on this API)."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def get_loop(state: HumanLoopState, name: str) -> dict[str, Any]:
    loop = await state.loops.find_one({"_id": name})
    if loop is None:
        raise not_found(name)
    return loop


async def announce(state: HumanLoopState, loop: dict[str, Any], status: str, previous: str | None) -> None:
    """A status change on loupe.humanloop.events (keyed by loop name, so one loop's events stay in order)."""
    event = {"HumanLoopName": loop["_id"], "HumanLoopArn": loop["arn"], "FlowDefinitionArn": loop["flow_arn"],
             "HumanLoopStatus": status, "PreviousStatus": previous, "At": iso(now())}
    if status == m.FAILED:
        event["FailureCode"], event["FailureReason"] = loop.get("failure_code"), loop.get("failure_reason")
    await state.publish_event(loop["_id"], event)


async def move(state: HumanLoopState, loop: dict[str, Any], status: str, *,
               extra: dict[str, Any] | None = None,
               failure: tuple[str, str] | None = None) -> dict[str, Any] | None:
    """Change a loop's status if nobody changed the loop since it was read; the updated loop, or None."""
    update: dict[str, Any] = {"status": status, "updated_at": now(), **(extra or {})}
    if failure is not None:
        update["failure_code"], update["failure_reason"] = failure
    moved = await state.loops.find_one_and_update(
        {"_id": loop["_id"], "status": loop["status"], "rev": loop["rev"]},
        {"$set": update, "$inc": {"rev": 1}},
        return_document=True,
    )
    if moved is not None:
        await announce(state, moved, status, loop["status"])
    return moved


def output_uri(flow: dict[str, Any], name: str, created: datetime) -> str:
    """Where output.json goes, laid out as A2I does:
    <path>/<flow>/<yyyy/mm/dd/hh/mm/ss>/<loop>/output.json."""
    base = flow["spec"]["OutputConfig"]["S3OutputPath"].rstrip("/")
    return f"{base}/{flow['_id']}/{created:%Y/%m/%d/%H/%M/%S}/{name}/output.json"


def active_limit(state: HumanLoopState, flow: dict[str, Any]) -> int:
    own = flow["spec"].get("MaxActiveHumanLoops")
    return min(own, state.settings.max_active_human_loops) if own else state.settings.max_active_human_loops


async def _flow_for(state: HumanLoopState, arn: str) -> dict[str, Any]:
    name = m.flow_name_of(arn)
    flow = await state.flows.find_one({"_id": name})
    if flow is None or flow["arn"] != arn:
        raise validation(f"Flow definition {arn} does not exist; "
                         "create it with POST /loupe/v1/flow-definitions")
    return flow


def _parse_input(text: str) -> Any:
    try:
        return json_bodies.loads(text)
    except json_bodies.JsonRefused as refused:
        raise validation(f"HumanLoopInput.InputContent must be a JSON document: {refused}") from None


async def _copy_task_image(state: HumanLoopState, name: str,
                           content: Any) -> tuple[dict[str, Any], str | None]:
    """Copy the image an API caller's InputContent names (s3://bucket/key in taskObject or image)
    next to the loop, so reviewers see it even if the original moves. Returns task fields, or the
    reason the loop cannot be reviewed (it then fails with ValidationError, as A2I's loops do)."""
    ref = next((content[f] for f in IMAGE_FIELDS
                if isinstance(content, dict) and isinstance(content.get(f), str)), None)
    if ref is None:
        return {}, None
    if not ref.startswith("s3://") or "/" not in ref[5:]:
        return {}, f"The task image {ref[:200]} is not an s3://bucket/key reference"
    bucket, key = ref[5:].split("/", 1)
    try:
        data = await asyncio.to_thread(state.buckets.read, bucket, key, max_bytes=MAX_IMAGE_BYTES)
        info = await asyncio.to_thread(inspect_image, data)
    except (BucketError, ImageRejected, OSError) as exc:
        return {}, f"The task image {ref[:200]} cannot be used: {exc}"
    image_key = f"human-loops/{name}/image"
    await state.blobs.put(image_key, data)
    return {"image_key": image_key, "content_type": info.content_type, "width": info.width,
            "height": info.height}, None


async def start(state: HumanLoopState, cmd: m.StartHumanLoop) -> Reply:
    try:
        return await _start(state, cmd)
    except Exception as exc:
        # A loop started by a detection was already named in its result, and nobody awaits this
        # reply: record why it did not start, so DescribeHumanLoop tells the caller.
        conflict = isinstance(exc, LoupeError) and exc.error.code is ErrorCode.CONFLICT
        if cmd.origin is not None and not conflict:
            reason = exc.error.message if isinstance(exc, LoupeError) else "an internal error"
            await _record_failed_start(state, cmd, reason)
        raise


async def _record_failed_start(state: HumanLoopState, cmd: m.StartHumanLoop, reason: str) -> None:
    created = now()
    loop = {
        "_id": cmd.human_loop_name, "arn": state.loop_arn(cmd.human_loop_name),
        "flow_name": m.flow_name_of(cmd.flow_definition_arn), "flow_arn": cmd.flow_definition_arn,
        "input_content": cmd.input_content,
        "input_sha256": hashlib.sha256(cmd.input_content.encode()).hexdigest(),
        "content_classifiers": [], "status": m.FAILED, "failure_code": "InternalError",
        "failure_reason": f"The loop could not start: {reason}"[:1024], "rev": 0, "created_at": created,
        "updated_at": created, "expires_at": created, "task_count": 0, "output_s3_uri": "",
        "origin": cmd.origin.model_dump() if cmd.origin else None, "task": {}, "answers": [], "claims": [],
        "skipped": [], "consolidated": None, "feedback": None,
    }
    try:
        await state.loops.insert_one(loop)
    except Exception as exc:  # already recorded (a redelivery)
        if "duplicate" not in str(exc).lower():
            raise
        return
    await announce(state, loop, m.FAILED, None)


async def _start(state: HumanLoopState, cmd: m.StartHumanLoop) -> Reply:
    if cmd.input_content_key is not None:  # a large input came by claim check
        cmd = cmd.model_copy(update={"input_content": (await state.blobs.get(cmd.input_content_key)).decode(),
                                     "input_content_key": None})
    content = _parse_input(cmd.input_content)
    flow = await _flow_for(state, cmd.flow_definition_arn)
    digest = hashlib.sha256(cmd.input_content.encode()).hexdigest()
    existing = await state.loops.find_one({"_id": cmd.human_loop_name})
    if existing is not None:
        if (existing["status"] in m.ACTIVE and existing["input_sha256"] == digest
                and existing["flow_arn"] == flow["arn"]):
            return Reply.success({"HumanLoopArn": existing["arn"]})
        if existing["status"] in m.ACTIVE:
            raise LoupeError(ErrorCode.CONFLICT, f"An active human loop named {cmd.human_loop_name} already "
                             "exists with different input or flow definition; use another name")
        raise LoupeError(ErrorCode.CONFLICT, f"A human loop named {cmd.human_loop_name} already exists "
                         f"({existing['status']}); delete it (DeleteHumanLoop) to reuse the name")
    limit = active_limit(state, flow)
    active = await state.loops.count_documents({"flow_name": flow["_id"], "status": {"$in": list(m.ACTIVE)}})
    if active >= limit:
        raise LoupeError(ErrorCode.QUOTA_EXCEEDED, f"Flow definition {flow['_id']} already has {active} "
                         f"active human loops; the limit is {limit}. Stop or finish some first.",
                         quota_code="L-LOUPE-ACTIVE-HUMAN-LOOPS", service_code="sagemaker")
    created = now()
    config = flow["spec"]["HumanLoopConfig"]
    if cmd.origin is not None:
        task, problem = {"image_key": cmd.origin.image_key, "content_type": cmd.origin.content_type,
                         "heatmap_key": cmd.origin.heatmap_key, "mask_key": cmd.origin.mask_key,
                         "width": cmd.origin.width, "height": cmd.origin.height}, None
    else:
        task, problem = await _copy_task_image(state, cmd.human_loop_name, content)
    loop = {
        "_id": cmd.human_loop_name, "arn": state.loop_arn(cmd.human_loop_name), "flow_name": flow["_id"],
        "flow_arn": flow["arn"], "input_content": cmd.input_content, "input_sha256": digest,
        "content_classifiers": cmd.content_classifiers or [], "status": m.IN_PROGRESS, "rev": 0,
        "created_at": created, "updated_at": created,
        "expires_at": created + timedelta(seconds=config["TaskAvailabilityLifetimeInSeconds"]),
        "task_count": config["TaskCount"], "output_s3_uri": output_uri(flow, cmd.human_loop_name, created),
        "origin": cmd.origin.model_dump() if cmd.origin else None, "task": task,
        "answers": [], "claims": [], "skipped": [], "consolidated": None, "feedback": None,
    }
    try:
        await state.loops.insert_one(loop)
    except Exception as exc:  # a duplicate key: another StartHumanLoop with this name won the race
        if "duplicate" not in str(exc).lower():
            raise
        return await _start(state, cmd)
    await announce(state, loop, m.IN_PROGRESS, None)
    if problem is not None:
        await move(state, loop, m.FAILED, failure=("ValidationError", problem[:1024]))
    return Reply.success({"HumanLoopArn": loop["arn"]})


def describe_body(loop: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "CreationTime": iso(loop["created_at"]), "FlowDefinitionArn": loop["flow_arn"],
        "HumanLoopArn": loop["arn"], "HumanLoopName": loop["_id"], "HumanLoopStatus": loop["status"],
    }
    if loop["status"] == m.FAILED:
        body["FailureCode"] = loop.get("failure_code") or "InternalError"
        body["FailureReason"] = loop.get("failure_reason") or ""
    if loop["status"] != m.FAILED and loop.get("output_s3_uri"):
        # Known from the start, as in A2I: AWS's samples print it while the loop is InProgress.
        # The file is there once the loop is Completed; a failed loop never writes one.
        body["HumanLoopOutput"] = {"OutputS3Uri": loop["output_s3_uri"]}
    return body


async def describe(state: HumanLoopState, cmd: m.DescribeHumanLoop) -> Reply:
    return Reply.success(describe_body(await get_loop(state, cmd.human_loop_name)))


async def list_loops(state: HumanLoopState, cmd: m.ListHumanLoops) -> Reply:
    flow_name = m.flow_name_of(cmd.flow_definition_arn)
    flow = await state.flows.find_one({"_id": flow_name})
    if flow is None or flow["arn"] != cmd.flow_definition_arn:
        raise LoupeError(ErrorCode.NOT_FOUND, f"Flow definition {cmd.flow_definition_arn} does not exist")
    after, before = cmd.creation_time_after, cmd.creation_time_before
    scope = json.dumps(["loops", flow_name, cmd.sort_order, after and after.isoformat(),
                        before and before.isoformat()])
    query: dict[str, Any] = {"flow_name": flow_name}
    created: dict[str, Any] = {}
    if after is not None:
        created["$gte"] = after
    if before is not None:
        created["$lte"] = before
    descending = cmd.sort_order == "Descending"
    if cmd.next_token is not None:
        position = decode_token(scope, cmd.next_token)
        try:
            at, last = datetime.fromisoformat(position["t"]), str(position["n"])
        except (KeyError, TypeError, ValueError):
            raise validation("Invalid pagination token: the NextToken was not issued for this "
                             "request") from None
        beyond = "$lt" if descending else "$gt"
        query["$or"] = [{"created_at": {beyond: at}}, {"created_at": at, "_id": {beyond: last}}]
    if created:
        query["created_at"] = created
    direction = -1 if descending else 1
    cursor = state.loops.find(query).sort([("created_at", direction),
                                           ("_id", direction)]).limit(cmd.max_results + 1)
    page = await cursor.to_list(length=cmd.max_results + 1)
    body: dict[str, Any] = {"HumanLoopSummaries": [_summary(loop) for loop in page[: cmd.max_results]]}
    if len(page) > cmd.max_results:
        last = page[cmd.max_results - 1]
        body["NextToken"] = encode_token(scope, {"t": last["created_at"].isoformat(), "n": last["_id"]})
    return Reply.success(body)


def _summary(loop: dict[str, Any]) -> dict[str, Any]:
    summary = {"CreationTime": iso(loop["created_at"]), "FlowDefinitionArn": loop["flow_arn"],
               "HumanLoopName": loop["_id"], "HumanLoopStatus": loop["status"]}
    if loop["status"] == m.FAILED:
        summary["FailureReason"] = (loop.get("failure_reason") or "")[:1024]
    return summary


async def stop(state: HumanLoopState, cmd: m.StopHumanLoop) -> Reply:
    """InProgress -> Stopping now (open tasks withdrawn); the sweeper finishes it as Stopped."""
    loop = await get_loop(state, cmd.human_loop_name)
    if loop["status"] in (m.STOPPING, m.STOPPED):
        return Reply.success({})
    if loop["status"] != m.IN_PROGRESS:
        raise validation(f"Human loop {loop['_id']} is {loop['status']}; only an InProgress loop can be "
                         "stopped")
    if await move(state, loop, m.STOPPING, extra={"claims": []}) is None:
        return await stop(state, cmd)  # it changed meanwhile (an answer, expiry): decide again
    return Reply.success({})


async def delete(state: HumanLoopState, cmd: m.DeleteHumanLoop) -> Reply:
    loop = await get_loop(state, cmd.human_loop_name)
    if loop["status"] in m.ACTIVE:
        raise validation(f"Human loop {loop['_id']} is {loop['status']}; stop it (StopHumanLoop) before "
                         "deleting it")
    result = await state.loops.delete_one({"_id": loop["_id"], "rev": loop["rev"]})
    if result.deleted_count == 0:
        return await delete(state, cmd)
    await state.blobs.delete_prefix(f"human-loops/{loop['_id']}/")
    await announce(state, loop, "Deleted", loop["status"])
    return Reply.success({})


async def sweep(state: HumanLoopState) -> None:
    """Expire loops past TaskAvailabilityLifetimeInSeconds, and finish stopping ones."""
    expired = {"status": m.IN_PROGRESS, "expires_at": {"$lte": now()}, "complete_pending": {"$ne": True}}
    for loop in await state.loops.find(expired).to_list(length=500):
        await move(state, loop, m.FAILED, extra={"claims": []}, failure=(
            "Expired", f"No complete answer within the task availability lifetime "
                       f"({(loop['expires_at'] - loop['created_at']).total_seconds():.0f} s)"))
    for loop in await state.loops.find({"status": m.STOPPING}).to_list(length=500):
        await move(state, loop, m.STOPPED, extra={"claims": []})
