"""Reviewers and their work: accounts (created by an admin), sessions, the per-flow queue, claims
that lock a task for TaskTimeLimitInSeconds, answers, skips. A claim past its deadline simply no
longer counts, so an abandoned task is back in the queue without any clean-up job."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from PIL import Image

from loupe_common import human_loop_messages as m
from loupe_common.blobs import BlobNotFound
from loupe_common.errors import ErrorCode, LoupeError, validation
from loupe_common.messages import Reply

from . import completion
from .flows import get_flow
from .loops import get_loop, iso
from .store import HumanLoopState, now

SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)


def denied(message: str = "Sign in to review") -> LoupeError:
    return LoupeError(ErrorCode.ACCESS_DENIED, message)


# --- accounts ----------------------------------------------------------------------------------


async def create_reviewer(state: HumanLoopState, cmd: m.CreateReviewer) -> Reply:
    salt = secrets.token_bytes(16)
    digest = await asyncio.to_thread(_hash, cmd.password, salt)
    if await state.reviewers.find_one({"_id": cmd.username}) is not None:
        raise LoupeError(ErrorCode.CONFLICT, f"Reviewer {cmd.username} already exists")
    await state.reviewers.insert_one({"_id": cmd.username, "salt": salt, "hash": digest, "created_at": now()})
    return Reply.success({"username": cmd.username})


async def list_reviewers(state: HumanLoopState, cmd: m.ListReviewers) -> Reply:
    found = await state.reviewers.find({}, {"created_at": 1}).sort("_id", 1).to_list(length=None)
    return Reply.success({"reviewers": [{"username": r["_id"], "created_at": iso(r["created_at"])}
                                        for r in found]})


async def delete_reviewer(state: HumanLoopState, cmd: m.DeleteReviewer) -> Reply:
    if (await state.reviewers.delete_one({"_id": cmd.username})).deleted_count == 0:
        raise LoupeError(ErrorCode.NOT_FOUND, f"Reviewer {cmd.username} does not exist")
    await state.sessions.delete_many({"username": cmd.username})
    return Reply.success({})


async def sign_in(state: HumanLoopState, cmd: m.SignIn) -> Reply:
    # Guessing is slowed per source address and account by the gateway (sign_in_guard), not by
    # locking the account here: a lock anyone could trigger would lock the real reviewer out.
    reviewer = await state.reviewers.find_one({"_id": cmd.username})
    # Hash even for an unknown name, so timing does not tell which names exist.
    salt = reviewer["salt"] if reviewer else b"\0" * 16
    digest = await asyncio.to_thread(_hash, cmd.password, salt)
    if reviewer is None or not hmac.compare_digest(digest, reviewer["hash"]):
        raise denied("Wrong user name or password")
    token = secrets.token_urlsafe(32)
    expires = now() + timedelta(hours=state.settings.review_session_hours)
    await state.sessions.insert_one({"_id": _session_id(token), "username": cmd.username,
                                     "expires_at": expires})
    return Reply.success({"session": token, "username": cmd.username, "expires_at": iso(expires)})


def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()  # the database never holds a usable token


async def reviewer_of(state: HumanLoopState, cmd: m.ReviewerCommand) -> str:
    session = await state.sessions.find_one({"_id": _session_id(cmd.session)})
    if session is None or session["expires_at"] <= now():
        raise denied("Your session has expired; sign in again")
    return session["username"]


async def sign_out(state: HumanLoopState, cmd: m.SignOut) -> Reply:
    await state.sessions.delete_one({"_id": _session_id(cmd.session)})
    return Reply.success({})


# --- the queue ---------------------------------------------------------------------------------


def _live_claims(loop: dict[str, Any], at: datetime) -> list[dict[str, Any]]:
    return [c for c in loop["claims"] if c["expires_at"] > at]


def _open_for(loop: dict[str, Any], reviewer: str, at: datetime) -> bool:
    """Can `reviewer` claim this loop: it still needs answers, and they have not answered or skipped it."""
    if reviewer in loop["skipped"] or any(a["workerId"] == reviewer for a in loop["answers"]):
        return False
    claims = _live_claims(loop, at)
    return (not any(c["reviewer"] == reviewer for c in claims)
            and len(loop["answers"]) + len(claims) < loop["task_count"])


def _holds(loop: dict[str, Any], reviewer: str, at: datetime) -> dict[str, Any] | None:
    return next((c for c in _live_claims(loop, at) if c["reviewer"] == reviewer), None)


async def queue(state: HumanLoopState, cmd: m.ReviewQueue) -> Reply:
    reviewer = await reviewer_of(state, cmd)
    at = now()
    flows = []
    for flow in await state.flows.find({}).sort("_id", 1).to_list(length=None):
        flows.append({"name": flow["_id"], "title": flow["spec"]["HumanLoopConfig"]["TaskTitle"],
                      **await _progress(state, flow["_id"], reviewer, at)})
    return Reply.success({"flows": flows, "username": reviewer})


async def _progress(state: HumanLoopState, flow_name: str, reviewer: str, at: datetime) -> dict[str, int]:
    open_tasks = 0
    async for loop in state.loops.find({"flow_name": flow_name, "status": m.IN_PROGRESS}):
        open_tasks += _open_for(loop, reviewer, at) or _holds(loop, reviewer, at) is not None
    answered = await state.loops.count_documents({"flow_name": flow_name, "answers.workerId": reviewer})
    return {"open_tasks": open_tasks, "answered_by_you": answered}


async def claim(state: HumanLoopState, cmd: m.ClaimTask) -> Reply:
    reviewer = await reviewer_of(state, cmd)
    flow = await get_flow(state, cmd.flow_definition_name)
    at = now()
    mine_now = {"flow_name": flow["_id"], "status": m.IN_PROGRESS, "claims.reviewer": reviewer}
    async for loop in state.loops.find(mine_now):  # a reload of the page resumes the task already claimed
        if _holds(loop, reviewer, at):
            return Reply.success({"task": await _task(state, flow, loop, reviewer)})
    limit = flow["spec"]["HumanLoopConfig"]["TaskTimeLimitInSeconds"]
    # Loops this reviewer answered or skipped are left out by the query itself, so the scan below
    # only meets loops that are full or claimed by others.
    candidates = state.loops.find(
        {"flow_name": flow["_id"], "status": m.IN_PROGRESS, "skipped": {"$ne": reviewer},
         "answers.workerId": {"$ne": reviewer}}).sort([("created_at", 1), ("_id", 1)])
    async for loop in candidates:
        if not _open_for(loop, reviewer, at):
            continue
        mine = {"reviewer": reviewer, "claimed_at": at, "expires_at": at + timedelta(seconds=limit)}
        claimed = await state.loops.find_one_and_update(
            {"_id": loop["_id"], "rev": loop["rev"], "status": m.IN_PROGRESS},
            {"$set": {"claims": [*_live_claims(loop, at), mine]}, "$inc": {"rev": 1}}, return_document=True)
        if claimed is not None:  # else someone else took the last slot: try the next loop
            return Reply.success({"task": await _task(state, flow, claimed, reviewer)})
    return Reply.success({"task": None})


async def _task(state: HumanLoopState, flow: dict[str, Any], loop: dict[str, Any],
                reviewer: str) -> dict[str, Any]:
    config = flow["spec"]["HumanLoopConfig"]
    task = loop["task"]
    files = {which: f"/loupe/review/api/tasks/{loop['_id']}/{which}" if task.get(f"{which}_key") else None
             for which in ("image", "heatmap", "mask")}
    at = now()
    claim_ = _holds(loop, reviewer, at)
    return {
        "human_loop_name": loop["_id"], "flow_definition_name": flow["_id"], "title": config["TaskTitle"],
        "instructions": config["TaskDescription"], "brush": config.get("DefectBrush", False),
        "claim_expires_at": iso(claim_["expires_at"]) if claim_ else None,
        "time_limit_seconds": config["TaskTimeLimitInSeconds"], "prediction": _prediction(loop),
        "files": files, "input_content": loop["input_content"][:20_000],
        "width": task.get("width"), "height": task.get("height"),
        "progress": await _progress(state, flow["_id"], reviewer, at),
    }


def _prediction(loop: dict[str, Any]) -> dict[str, Any] | None:
    try:
        content = json.loads(loop["input_content"])
    except ValueError:
        return None
    prediction = content.get("prediction") if isinstance(content, dict) else None
    return prediction if isinstance(prediction, dict) else None


async def task_file(state: HumanLoopState, cmd: m.TaskFile) -> Reply:
    reviewer = await reviewer_of(state, cmd)
    loop = await get_loop(state, cmd.human_loop_name)
    if _holds(loop, reviewer, now()) is None and not any(a["workerId"] == reviewer for a in loop["answers"]):
        raise LoupeError(ErrorCode.NOT_FOUND, f"You hold no task of human loop {loop['_id']}; claim it first")
    key = loop["task"].get(f"{cmd.which}_key")
    if not key:
        raise LoupeError(ErrorCode.NOT_FOUND, f"Human loop {loop['_id']} has no {cmd.which}")
    media = loop["task"].get("content_type", "image/png") if cmd.which == "image" else "image/png"
    return Reply.success({"key": key, "media_type": media})


# --- answers -----------------------------------------------------------------------------------


async def _check_mask(state: HumanLoopState, loop: dict[str, Any], key: str) -> None:
    try:
        data = await state.blobs.get(key)
        with Image.open(io.BytesIO(data), formats=["PNG"]) as mask:
            size = mask.size
    except (BlobNotFound, OSError):
        raise validation("The painted mask must be a PNG image") from None
    expected = (loop["task"].get("width"), loop["task"].get("height"))
    if size != expected:
        raise validation(f"The painted mask is {size[0]}x{size[1]}; the image is {expected[0]}x{expected[1]}")


async def answer(state: HumanLoopState, cmd: m.AnswerTask) -> Reply:
    reviewer = await reviewer_of(state, cmd)
    loop = await get_loop(state, cmd.human_loop_name)
    at = now()
    if loop["status"] != m.IN_PROGRESS:
        raise LoupeError(ErrorCode.CONFLICT,
                         f"Human loop {loop['_id']} is {loop['status']}; it takes no more answers")
    held = _holds(loop, reviewer, at)
    if held is None:
        raise LoupeError(ErrorCode.CONFLICT, "You do not hold this task (the claim expired or was "
                         "withdrawn); claim a task again")
    mask_key = None
    if cmd.mask_key is not None:
        if cmd.label != "anomaly":
            raise validation("A defect mask goes only with the label anomaly")
        await _check_mask(state, loop, cmd.mask_key)
        mask_key = cmd.mask_key
    content: dict[str, Any] = {"anomaly": {"label": cmd.label}}
    if mask_key:
        content["anomaly"]["maskKey"] = mask_key
    entry = {"answerContent": content, "acceptanceTime": held["claimed_at"], "submissionTime": at,
             "timeSpentInSeconds": round((at - held["claimed_at"]).total_seconds(), 3), "workerId": reviewer}
    answers = [*loop["answers"], entry]
    claims = [c for c in _live_claims(loop, at) if c["reviewer"] != reviewer]
    updated = await state.loops.find_one_and_update(
        {"_id": loop["_id"], "rev": loop["rev"], "status": m.IN_PROGRESS},
        {"$set": {"answers": answers, "claims": claims, "updated_at": at,
                  "complete_pending": len(answers) >= loop["task_count"]}, "$inc": {"rev": 1}},
        return_document=True)
    if updated is None:
        return await answer(state, cmd)  # the loop changed meanwhile (another answer): check again
    if len(answers) >= updated["task_count"]:
        updated = await completion.complete(state, updated)
    return Reply.success({"human_loop_status": updated["status"], "answers": len(answers),
                          "task_count": updated["task_count"]})


async def skip(state: HumanLoopState, cmd: m.SkipTask) -> Reply:
    reviewer = await reviewer_of(state, cmd)
    loop = await get_loop(state, cmd.human_loop_name)
    at = now()
    if loop["status"] != m.IN_PROGRESS or _holds(loop, reviewer, at) is None:
        raise LoupeError(ErrorCode.CONFLICT, "You do not hold this task (the claim expired or the loop is "
                         f"{loop['status']}); nothing to skip")
    claims = [c for c in _live_claims(loop, at) if c["reviewer"] != reviewer]
    updated = await state.loops.find_one_and_update(
        {"_id": loop["_id"], "rev": loop["rev"], "status": m.IN_PROGRESS},
        {"$set": {"claims": claims, "skipped": sorted({*loop["skipped"], reviewer})}, "$inc": {"rev": 1}})
    if updated is None:
        return await skip(state, cmd)
    return Reply.success({})
