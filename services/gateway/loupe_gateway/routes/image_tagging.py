"""Huawei Image Recognition, Image Tagging v1.0 (POST /v1.0/image/tagging) and v2
(POST /v2/{project_id}/image/tagging), and the IAM-style calls clients make first (POST /v3/auth/tokens,
GET /v3/projects).

The gateway authenticates (X-Auth-Token or an SDK-HMAC-SHA256 signature), rate-limits, checks the
body exactly as the reference describes (image xor url, language, limit, threshold; size, sides and
format read from the image header), fetches a url without server-side request forgery, and sends
the image to the inference workers (group loupe-tagging), which run the models and shape the result.
Every answer carries X-Request-Id; errors are {"error_code", "error_msg"}.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import math
import warnings
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from PIL import Image

from loupe_common import json_bodies
from loupe_common.access_keys import Area
from loupe_common.errors import HuaweiError, LoupeError
from loupe_common.fetch import FetchFailed, FetchRefused, fetch_url
from loupe_common.hosting_messages import H_REQUEST_ID
from loupe_common.image_tagging import (
    DEFAULT_LIMIT,
    DEFAULT_THRESHOLD,
    FORMATS,
    H_LANGUAGE,
    H_LIMIT,
    H_THRESHOLD,
    H_VERSION,
    LANGUAGES,
    MAX_IMAGE_BYTES,
    MAX_LIMIT,
    MAX_WIDE_SIDE,
    MIN_NARROW_SIDE,
    TaggingParams,
    Version,
)
from loupe_common.topics import TAGGING_REQUESTS

from ..bodies import BodyTooLarge, read_body
from ..context import Gateway, send_image, source_of
from ..huawei_auth import (
    Caller,
    RateLimiter,
    check_password_body,
    check_project,
    huawei_error,
    issue_token,
    project_body,
    token_body,
    verify_aksk,
    verify_token,
)
from ..sign_in_guard import refusal

MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM")  # how JPG, PNG and BMP files begin
# 10 MB of image as base64 inside JSON, plus room for the other fields.
BODY_LIMIT = MAX_IMAGE_BYTES * 4 // 3 + 64 * 1024
FIELDS = {"image", "url", "language", "limit", "threshold"}
log = logging.getLogger("loupe.gateway.tagging")
router = APIRouter()


def request_id(request: Request) -> str:
    return request.state.request_id


def huawei_response(request: Request, status: int, body: dict,
                    headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status,
                        headers={"X-Request-Id": request_id(request), **(headers or {})})


def error_response(request: Request, err: HuaweiError) -> JSONResponse:
    return huawei_response(request, err.status, err.body())


def _gateway(request: Request) -> Gateway:
    return request.app.state.gateway


async def _body(request: Request) -> bytes:
    try:
        return await read_body(request, BODY_LIMIT)
    except BodyTooLarge:
        raise huawei_error("APIG.0201", f"The request body is oversized (limit {BODY_LIMIT} bytes)") from None


def _json(body: bytes) -> Any:
    try:
        return json_bodies.loads(body)
    except json_bodies.JsonRefused:
        raise huawei_error("AIS.0014") from None


# --- tokens ----------------------------------------------------------------------------------------


def _account_named(body: object) -> str:
    """The user name a token request names (for the sign-in guard), or "" when it names none."""
    try:
        name = body["auth"]["identity"]["password"]["user"]["name"]  # type: ignore[index]
    except (KeyError, TypeError):
        return ""
    return name[:128] if isinstance(name, str) else ""


@router.post("/v3/auth/tokens")
async def create_token(request: Request) -> JSONResponse:
    try:
        gw = _gateway(request)
        body = _json(await _body(request))
        source, account = source_of(request), _account_named(body)
        if wait := gw.sign_ins.wait_seconds(source, account):
            raise huawei_error("APIG.0308", refusal(wait))
        try:
            user, project = check_password_body(gw.settings, body)
        except HuaweiError as err:
            if err.code == "APIG.0301" and account:  # a wrong name or password, not a malformed body
                gw.sign_ins.failed(source, account)
            raise
        gw.sign_ins.succeeded(source, account)
        token, claims = issue_token(gw.settings, user, project)
        return huawei_response(request, 201, token_body(claims, project, gw.settings),
                               {"X-Subject-Token": token})
    except HuaweiError as err:
        return error_response(request, err)


@router.get("/v3/projects")
async def list_projects(request: Request) -> JSONResponse:
    """IAM's KeystoneListProjects, as huaweicloudsdkcore calls it (?name=<region>) to find the project
    id of a client built with keys and a region but no project id: the account's one project."""
    try:
        gw = _gateway(request)
        _authenticate(request, gw, await _body(request))
        wanted = request.query_params.get("name")
        projects = [project_body(gw.settings)] if wanted in (None, gw.settings.iam_project_name) else []
        return huawei_response(request, 200, {"projects": projects, "links": {"self": str(request.url.path)}})
    except HuaweiError as err:
        return error_response(request, err)


# --- tagging ---------------------------------------------------------------------------------------


def _authenticate(request: Request, gw: Gateway, body: bytes) -> Caller:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.scope["headers"]}
    if headers.get("authorization", "").startswith("SDK-HMAC-SHA256"):
        return verify_aksk(gw.keys, request.method, request.scope["raw_path"].decode("latin-1"),
                           request.scope["query_string"].decode("latin-1"), headers, body)
    return verify_token(gw.settings, headers.get("x-auth-token"))


def _limiter(request: Request, gw: Gateway) -> RateLimiter:
    state = request.app.state
    if not hasattr(state, "tagging_limiter"):
        state.tagging_limiter = RateLimiter(gw.settings.tagging_rate_per_second, gw.settings.tagging_burst)
    return state.tagging_limiter


def parse_params(fields: dict[str, Any], version: Version) -> tuple[TaggingParams, str | None, str | None]:
    """(params, base64 image, url) from the body, as the reference says; HuaweiError otherwise."""
    unknown = sorted(set(fields) - FIELDS)
    if unknown:
        raise huawei_error("AIS.0012", f"The request parameter is not supported: {', '.join(unknown)[:200]}")
    image, url = fields.get("image") or None, fields.get("url") or None
    for name, value in (("image", image), ("url", url)):
        if value is not None and not isinstance(value, str):
            raise huawei_error("AIS.0501", f"{name} must be a string")
    if (image is None) == (url is None):
        raise huawei_error("AIS.0501", "Configure exactly one of image (base64) and url")
    language = fields.get("language", "zh")
    if language not in LANGUAGES:
        raise huawei_error("AIS.0501", "language must be zh or en")
    limit = fields.get("limit", DEFAULT_LIMIT[version])
    if (isinstance(limit, bool) or not isinstance(limit, int)
            or not 1 <= limit <= MAX_LIMIT.get(version, limit)):
        bound = f"from 1 to {MAX_LIMIT[version]}" if version in MAX_LIMIT else "a positive integer"
        raise huawei_error("AIS.0501", f"limit must be {bound}")
    threshold = fields.get("threshold", DEFAULT_THRESHOLD[version])
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold):
        raise huawei_error("AIS.0501", "threshold must be a number from 0 to 100")
    if not 0 <= threshold <= 100:
        threshold = DEFAULT_THRESHOLD[version]  # "beyond the value range, the default value is used"
    return (TaggingParams(version=version, language=language, limit=limit, threshold=float(threshold)),
            image, url)


def decode_image(encoded: str) -> bytes:
    text = encoded.split(",", 1)[1] if encoded.startswith("data:") else encoded
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise huawei_error("AIS.0501", "image must be the base64 encoding of the image file") from None
    return data


def check_image(data: bytes) -> None:
    """Size, format and sides from the header only; the worker decodes with limits."""
    if not data:
        raise huawei_error("AIS.0503", "The image is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise huawei_error("AIS.0504", f"The image is {len(data)} bytes; the limit is 10 MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                fmt, (width, height) = img.format, img.size
    except Image.DecompressionBombError:
        raise huawei_error("AIS.0504",
                           f"The image has too many pixels (wide side at most {MAX_WIDE_SIDE})") from None
    except Exception:  # noqa: BLE001 - not an image Pillow can even identify
        if data.startswith(MAGIC):  # a JPG, PNG or BMP cut short before its size: damaged, not foreign
            raise huawei_error("AIS.0503", "The image is damaged: its header is incomplete") from None
        raise huawei_error("AIS.0502", "The image format is not supported: send JPG, PNG or BMP") from None
    if fmt not in FORMATS:
        raise huawei_error("AIS.0502", f"The image format {fmt} is not supported: send JPG, PNG or BMP")
    if min(width, height) < MIN_NARROW_SIDE or max(width, height) > MAX_WIDE_SIDE:
        raise huawei_error("AIS.0504", f"The image is {width}x{height}: the narrow side must be greater than "
                           f"15 px and the wide side at most {MAX_WIDE_SIDE} px")


async def _image_from_url(gw: Gateway, url: str) -> bytes:
    try:
        return await fetch_url(url, allow_private=gw.settings.allow_private_urls, max_bytes=MAX_IMAGE_BYTES,
                               timeout=gw.settings.url_fetch_timeout_seconds)
    except FetchRefused as exc:
        raise huawei_error("ModelArts.4601", f"The external URL is invalid: {exc}") from None
    except FetchFailed as exc:
        raise huawei_error("ModelArts.4603",
                           f"The file failed to be downloaded from the external URL: {exc}") from None


async def _tag(gw: Gateway, rid: str, data: bytes, params: TaggingParams) -> dict:
    headers = {H_REQUEST_ID: rid, H_VERSION: params.version, H_LANGUAGE: params.language,
               H_LIMIT: str(params.limit), H_THRESHOLD: repr(params.threshold)}
    try:
        reply = await send_image(gw, TAGGING_REQUESTS, data, headers,
                                 timeout=gw.settings.tagging_timeout_seconds, kind="tagging")
    except LoupeError:
        raise huawei_error("AIS.0506", "No inference worker answered in time; try again") from None
    return reply.unwrap()


async def _tagging(request: Request, version: Version, project_id: str | None = None) -> JSONResponse:
    gw = _gateway(request)
    try:
        body = await _body(request)
        caller = _authenticate(request, gw, body)
        caller.require(Area.DETECT, request.method)
        if project_id is not None:
            check_project(caller, project_id)
        if not _limiter(request, gw).allow(caller.identity):
            raise huawei_error("APIG.0308")
        fields = _json(body)
        if not isinstance(fields, dict):
            raise huawei_error("AIS.0014", "The request body must be a JSON object")
        params, image, url = parse_params(fields, version)
        data = decode_image(image) if image is not None else await _image_from_url(gw, url)  # type: ignore[arg-type]
        check_image(data)
        answer = await _tag(gw, request_id(request), data, params)
    except HuaweiError as err:
        return error_response(request, err)
    except Exception:  # noqa: BLE001 - still an answer in the API's own format
        log.exception("tagging %s failed", request_id(request))
        return error_response(request, huawei_error("AIS.0506"))
    if "error_code" in answer:
        return huawei_response(request, 400,
                               {"error_code": answer["error_code"], "error_msg": answer["error_msg"]})
    return huawei_response(request, 200, answer)


@router.post("/v1.0/image/tagging")
async def tagging_v1(request: Request) -> JSONResponse:
    return await _tagging(request, "v1")


@router.post("/v2/{project_id}/image/tagging")
async def tagging_v2(request: Request, project_id: str) -> JSONResponse:
    return await _tagging(request, "v2", project_id)
