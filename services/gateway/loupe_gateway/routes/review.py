"""Human review on Loupe-native routes (AILabTools envelope).

Admin routes (SigV4-signed like every Loupe route): flow definitions, reviewer accounts, a loop's
output.json, and how many reviewed images wait for the next training run.
Reviewer routes (/loupe/review): the page itself and the JSON calls it makes, authenticated by the
session cookie the sign-in call sets. The human-loop service owns accounts and sessions; the
gateway only carries the cookie's token to it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import uuid
from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, Cookie, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from loupe_common import human_loop_messages as m
from loupe_common.access_keys import Area
from loupe_common.blobs import BlobNotFound
from loupe_common.buckets import BucketError
from loupe_common.errors import AilabError, ErrorCode, LoupeError, ailab_envelope
from loupe_common.topics import HUMAN_LOOP_COMMANDS

from .. import console_session as cs
from ..auth import LOOKOUT_SERVICES, signed_body
from ..bodies import parse_json_object, read_body
from ..context import Gateway, GatewayDep, RequestId, secure_cookie, source_of
from ..sign_in_guard import refusal
from ..validation import build

ADMIN_BODY_LIMIT = 256 * 1024
PAGE_BODY_LIMIT = 12 * 1024 * 1024  # an answer may carry a painted mask as large as the image
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
COOKIE = "loupe_review"
_admin_body = signed_body(ADMIN_BODY_LIMIT, LOOKOUT_SERVICES | {"sagemaker"}, Area.REVIEW)
admin = APIRouter(prefix="/loupe/v1", dependencies=[Depends(_admin_body)])
AdminBody = Annotated[bytes, Depends(_admin_body)]
page = APIRouter(prefix="/loupe/review")


async def ask(gw: Gateway, cmd: Any, key: str) -> dict[str, Any]:
    return (await gw.rpc.request(HUMAN_LOOP_COMMANDS, cmd, key=key)).unwrap()


def envelope(rid: str, data: dict[str, Any]) -> JSONResponse:
    status, body = ailab_envelope(request_id=rid, data=data)
    return JSONResponse(body, status_code=status)


# --- flow definitions ---------------------------------------------------------------------------


@admin.post("/flow-definitions")
async def create_flow_definition(gw: GatewayDep, rid: RequestId, body: AdminBody):
    spec = build(m.FlowDefinitionSpec, **parse_json_object(body))  # errors name the body's own fields
    cmd = m.CreateFlowDefinition(request_id=rid, spec=spec)
    return envelope(rid, await ask(gw, cmd, cmd.spec.FlowDefinitionName))


@admin.get("/flow-definitions")
async def list_flow_definitions(gw: GatewayDep, rid: RequestId):
    return envelope(rid, await ask(gw, build(m.ListFlowDefinitions, request_id=rid), "flow-definitions"))


@admin.get("/flow-definitions/{name}")
async def describe_flow_definition(gw: GatewayDep, rid: RequestId, name: str):
    cmd = build(m.DescribeFlowDefinition, request_id=rid, flow_definition_name=name)
    return envelope(rid, await ask(gw, cmd, name))


@admin.delete("/flow-definitions/{name}")
async def delete_flow_definition(gw: GatewayDep, rid: RequestId, name: str):
    cmd = build(m.DeleteFlowDefinition, request_id=rid, flow_definition_name=name)
    return envelope(rid, await ask(gw, cmd, name))


# --- reviewer accounts, outputs, reviewed images -----------------------------------------------


@admin.post("/reviewers")
async def create_reviewer(gw: GatewayDep, rid: RequestId, body: AdminBody):
    fields = parse_json_object(body)
    cmd = build(m.CreateReviewer, request_id=rid, username=fields.get("username"),
                password=fields.get("password"))
    return envelope(rid, await ask(gw, cmd, cmd.username))


@admin.get("/reviewers")
async def list_reviewers(gw: GatewayDep, rid: RequestId):
    return envelope(rid, await ask(gw, build(m.ListReviewers, request_id=rid), "reviewers"))


@admin.delete("/reviewers/{username}")
async def delete_reviewer(gw: GatewayDep, rid: RequestId, username: str):
    cmd = build(m.DeleteReviewer, request_id=rid, username=username)
    return envelope(rid, await ask(gw, cmd, username))


@admin.get("/human-loops/{name}/output")
async def human_loop_output(gw: GatewayDep, rid: RequestId, name: str):
    """The loop's output.json (A2I's shape plus consolidatedAnswer) and where its answers went."""
    found = await ask(gw, build(m.GetHumanLoopOutput, request_id=rid, human_loop_name=name), name)
    if "HumanLoopOutput" not in found:
        raise AilabError("ERROR_FILE_NOT_FOUND", f"Human loop {name} is {found['HumanLoopStatus']}; "
                         "only a Completed loop has an output")
    uri = found["HumanLoopOutput"]["OutputS3Uri"]
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    try:
        data = await asyncio.to_thread(gw.buckets.read, bucket, key, max_bytes=MAX_OUTPUT_BYTES)
    except (BucketError, OSError):
        raise AilabError("ERROR_FILE_NOT_FOUND", f"{uri} is missing") from None
    return envelope(rid, {"OutputS3Uri": uri, "Output": json.loads(data), "Feedback": found.get("Feedback")})


@admin.get("/projects/{project_name}/reviewed-images")
async def reviewed_images(gw: GatewayDep, rid: RequestId, project_name: str):
    cmd = build(m.ReviewedImages, request_id=rid, project_name=project_name)
    return envelope(rid, await ask(gw, cmd, project_name))


# --- the reviewer page --------------------------------------------------------------------------

Session = Annotated[str | None, Cookie(alias=COOKIE)]


def _session(token: str | None) -> str:
    if not token:
        raise AilabError("ERROR_USER_NOT_EXISTS", "Sign in to review")
    return token


async def _reviewer_call(gw: Gateway, cmd_type: type[m.ReviewerCommand], rid: str, token: str | None,
                         key: str, **fields: Any) -> dict:
    try:
        cmd = build(cmd_type, request_id=rid, session=_session(token), **fields)
        return await ask(gw, cmd, key)
    except LoupeError as err:
        if err.error.code is ErrorCode.ACCESS_DENIED:
            raise AilabError("ERROR_USER_NOT_EXISTS", err.error.message) from None
        raise


def _same_origin(request: Request) -> None:
    """A state change with the reviewer's cookie comes from this gateway's own page."""
    origin = request.headers.get("origin")
    if origin is not None and not cs.same_origin(request, origin):
        raise AilabError("AI_SERVICE_UNAUTHORIZED",
                         f"Requests from {origin[:200]} may not use the reviewer's session")


async def _json_body(request: Request) -> dict[str, Any]:
    _same_origin(request)
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        # Also what keeps other sites from posting forms with the reviewer's cookie.
        raise AilabError("UNSUPPORTED_FILE_TYPES", "Send application/json")
    return parse_json_object(await read_body(request, PAGE_BODY_LIMIT))


@page.get("", response_class=HTMLResponse, include_in_schema=False)
async def review_page() -> HTMLResponse:
    html = files("loupe_gateway").joinpath("static/review.html").read_text(encoding="utf-8")
    return HTMLResponse(html, headers={
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
                                   "style-src 'self' 'unsafe-inline'; "
                                   "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        "Cache-Control": "no-store"})


@page.post("/api/session")
async def sign_in(gw: GatewayDep, rid: RequestId, request: Request):
    fields = await _json_body(request)
    source, account = source_of(request), str(fields.get("username", ""))[:128]
    if wait := gw.sign_ins.wait_seconds(source, account):
        raise AilabError("AI_SERVICE_FLOW_RESTRICTION", refusal(wait))
    try:
        cmd = build(m.SignIn, request_id=rid, username=account, password=str(fields.get("password", "")))
        signed = await ask(gw, cmd, cmd.username or "sign-in")
    except LoupeError as err:
        if err.error.code is ErrorCode.ACCESS_DENIED and account:  # a wrong name or password, not a bad body
            gw.sign_ins.failed(source, account)
        raise AilabError("ERROR_USER_NOT_EXISTS", err.error.message) from None
    gw.sign_ins.succeeded(source, account)
    response = envelope(rid, {"username": signed["username"], "expires_at": signed["expires_at"]})
    response.set_cookie(COOKIE, signed["session"], max_age=int(gw.settings.review_session_hours * 3600),
                        httponly=True, samesite="strict", path="/loupe/review",
                        secure=secure_cookie(request, gw.settings))
    return response


@page.get("/api/session")
async def who_am_i(gw: GatewayDep, rid: RequestId, session: Session = None):
    return envelope(rid, await _reviewer_call(gw, m.WhoAmI, rid, session, "session"))


@page.delete("/api/session")
async def sign_out(gw: GatewayDep, rid: RequestId, request: Request, session: Session = None):
    _same_origin(request)
    if session:
        await _reviewer_call(gw, m.SignOut, rid, session, "sign-out")
    response = envelope(rid, {})
    response.delete_cookie(COOKIE, path="/loupe/review")
    return response


@page.get("/api/queue")
async def review_queue(gw: GatewayDep, rid: RequestId, session: Session = None):
    return envelope(rid, await _reviewer_call(gw, m.ReviewQueue, rid, session, "queue"))


@page.post("/api/flows/{flow}/claim")
async def claim_task(gw: GatewayDep, rid: RequestId, flow: str, request: Request, session: Session = None):
    await _json_body(request)
    return envelope(rid, await _reviewer_call(gw, m.ClaimTask, rid, session, flow, flow_definition_name=flow))


@page.get("/api/tasks/{loop}/{which}")
async def task_file(gw: GatewayDep, rid: RequestId, loop: str, which: str, session: Session = None):
    if which not in ("image", "heatmap", "mask"):
        raise AilabError("ERROR_FILE_NOT_FOUND", f"No task file named {which}")
    found = await _reviewer_call(gw, m.TaskFile, rid, session, loop, human_loop_name=loop, which=which)
    try:
        data = await gw.blobs.get(found["key"])
    except BlobNotFound:
        raise AilabError("ERROR_FILE_NOT_FOUND", f"The {which} of {loop} is gone") from None
    return Response(data, media_type=found["media_type"], headers={"Cache-Control": "private, max-age=300"})


@page.post("/api/tasks/{loop}/answer")
async def answer_task(gw: GatewayDep, rid: RequestId, loop: str, request: Request, session: Session = None):
    fields = await _json_body(request)
    # Checked before anything is stored: the session (the service then checks the claim) and the name.
    build(m.AnswerTask, request_id=rid, session=_session(session), human_loop_name=loop,
          label=fields.get("label"))
    mask_key = await _store_mask(gw, loop, fields["mask"]) if fields.get("mask") else None
    try:
        result = await _reviewer_call(gw, m.AnswerTask, rid, session, loop, human_loop_name=loop,
                                      label=fields.get("label"), mask_key=mask_key)
    except Exception:
        if mask_key:
            await gw.blobs.delete(mask_key)  # a refused answer leaves nothing behind
        raise
    return envelope(rid, result)


async def _store_mask(gw: Gateway, loop: str, encoded: Any) -> str:
    if not isinstance(encoded, str):
        raise AilabError("ERROR_INVALID_PARAMETER", "mask must be a base64-encoded PNG")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise AilabError("ERROR_INVALID_PARAMETER", "mask must be a base64-encoded PNG") from None
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise AilabError("UNSUPPORTED_FILE_TYPES", "mask must be a PNG image")
    key = f"human-loops/{loop}/answers/{uuid.uuid4().hex}.png"
    await gw.blobs.put(key, data)
    return key


@page.post("/api/tasks/{loop}/skip")
async def skip_task(gw: GatewayDep, rid: RequestId, loop: str, request: Request, session: Session = None):
    await _json_body(request)
    return envelope(rid, await _reviewer_call(gw, m.SkipTask, rid, session, loop, human_loop_name=loop))
