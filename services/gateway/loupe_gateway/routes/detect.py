"""DetectAnomalies (Lookout, 2020-11-20) and its Loupe-native twin (AILabTools envelope, with a
per-request threshold and the mask on or off).

The gateway makes the cheap checks (content type, size, format and sides from the image header);
the worker decodes the whole image with limits and answers. The image travels in the Kafka record,
or through blob storage (claim check) when it is larger than LOUPE_CLAIM_CHECK_BYTES.
"""

from __future__ import annotations

import io
import math
import time
import warnings
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from PIL import Image

from loupe_common.access_keys import Area
from loupe_common.errors import (
    AILAB_FOR_AWS,
    AilabError,
    ErrorCode,
    LoupeError,
    ResourceType,
    ailab_envelope,
    validation,
)
from loupe_common.hosting_messages import (
    H_CONTENT_TYPE,
    H_HEATMAP,
    H_MASK,
    H_REQUEST_ID,
    H_THRESHOLD,
    ResolveDeployment,
)
from loupe_common.images import (
    AILAB_CODES_FOR,
    CONTENT_TYPES,
    MAX_IMAGE_BYTES,
    MAX_SIDE,
    ImageRejected,
    Rejection,
    check_sides,
    decoder_said,
    sniff_format,
)

from ..auth import signed_body
from ..context import Gateway, GatewayDep, RequestId, send_image
from ..validation import build

# Read a little past the limit so an oversized image gets the size error, not a generic one.
DETECT_BODY_LIMIT = MAX_IMAGE_BYTES + 1024 * 1024
IMAGE_TYPES = tuple(CONTENT_TYPES.values())

_body = signed_body(DETECT_BODY_LIMIT, area=Area.DETECT)
Body = Annotated[bytes, Depends(_body)]
router = APIRouter(prefix="/2020-11-20", dependencies=[Depends(_body)])
native_router = APIRouter(prefix="/loupe/v1", dependencies=[Depends(_body)])


def check_image(content_type: str | None, body: bytes) -> str:
    """The declared type, after the checks that need only the bytes' header."""
    declared = (content_type or "").split(";")[0].strip().lower()
    if not declared:
        raise validation("Content-Type is required: image/png or image/jpeg",
                         ailab_code="UNSUPPORTED_FILE_TYPES")
    if declared not in IMAGE_TYPES:
        raise validation(f"Content-Type '{declared[:255]}' is not supported: use image/png or image/jpeg",
                         ailab_code="UNSUPPORTED_FILE_TYPES")
    if not body:
        raise validation("The request body is empty: send the image bytes")
    if len(body) > MAX_IMAGE_BYTES:
        raise validation(f"The image is {len(body)} bytes; the limit is {MAX_IMAGE_BYTES} bytes",
                         ailab_code=AILAB_CODES_FOR[Rejection.TOO_LARGE_FILE])
    fmt = sniff_format(body)
    if fmt is None:
        raise validation(f"The body is not a PNG or JPEG image (Content-Type says {declared})",
                         ailab_code=AILAB_CODES_FOR[Rejection.UNSUPPORTED_TYPE])
    if CONTENT_TYPES[fmt] != declared:
        raise validation(f"Content-Type is {declared} but the body is a {fmt} image",
                         ailab_code=AILAB_CODES_FOR[Rejection.UNSUPPORTED_TYPE])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(body), formats=[fmt]) as img:  # header only: nothing decoded
                width, height = img.size
    except Image.DecompressionBombError:
        raise validation(f"The image has too many pixels; the maximum is {MAX_SIDE}x{MAX_SIDE}",
                         ailab_code=AILAB_CODES_FOR[Rejection.TOO_LARGE]) from None
    except Exception as exc:  # noqa: BLE001 - a damaged header
        raise validation(f"The image could not be decoded ({decoder_said(exc)})",
                         ailab_code=AILAB_CODES_FOR[Rejection.CORRUPT]) from None
    try:
        check_sides(width, height)
    except ImageRejected as exc:
        raise validation(f"The {exc}", ailab_code=AILAB_CODES_FOR[exc.reason]) from None
    return declared


async def detect(gw: Gateway, rid: str, project_name: str, model_version: str, content_type: str | None,
                 body: bytes, *, threshold: float | None = None, with_mask: bool = True,
                 with_heatmap: bool = False) -> tuple[dict, dict]:
    """The worker's result, and a Server-Timing header: the worker's own time and the whole round
    trip from the gateway (the difference is the two Kafka hops)."""
    where = build(ResolveDeployment, request_id=rid, project_name=project_name, model_version=model_version)
    declared = check_image(content_type, body)
    topic = await gw.routes.topic_for(gw.rpc, where)
    headers = {H_REQUEST_ID: rid, H_CONTENT_TYPE: declared, H_MASK: "1" if with_mask else "0",
               H_HEATMAP: "1" if with_heatmap else "0"}
    if threshold is not None:
        headers[H_THRESHOLD] = repr(threshold)
    admission = gw.admission
    units = gw.routes.units_for(topic)
    if not admission.admit(topic, units):
        raise LoupeError(ErrorCode.THROTTLING, f"The model's {units} inference unit(s) already have "
                         f"{admission.in_flight.get(topic, 0)} images to answer, more than they can in "
                         f"{gw.settings.detect_timeout_seconds / 2:.0f} s; send this image again shortly "
                         "or add inference units", ailab_code="AI_SERVICE_FLOW_RESTRICTION")
    started = time.perf_counter()
    worker_ms = None
    try:
        reply = await send_image(gw, topic, body, headers, timeout=gw.settings.detect_timeout_seconds,
                                 kind="detect")
        worker_ms = reply.elapsed_ms
    except LoupeError:
        raise LoupeError(ErrorCode.INTERNAL, f"No inference unit answered within "
                         f"{gw.settings.detect_timeout_seconds:.0f} s; try again",
                         ailab_code="AI_SERVICE_TIMEOUT") from None
    finally:
        admission.done(topic, worker_ms)
    roundtrip = (time.perf_counter() - started) * 1000
    timing = f"roundtrip;dur={roundtrip:.2f}" + (f", inference;dur={reply.elapsed_ms:.2f}"
                                                 if reply.elapsed_ms else "")
    return reply.unwrap(), {"server-timing": timing}


@router.post("/projects/{project_name}/models/{model_version}/detect")
async def detect_anomalies(gw: GatewayDep, rid: RequestId, request: Request, project_name: str,
                           model_version: str, body: Body):
    result, headers = await detect(gw, rid, project_name, model_version, request.headers.get("content-type"),
                                   body)
    body_out = {"DetectAnomalyResult": result["DetectAnomalyResult"]}
    if "HumanLoopActivationOutput" in result:
        # Beside the Lookout shape, as Rekognition and Textract return it. The SDKs drop members
        # their model lacks, so the loop is also named in headers (boto3: ResponseMetadata.HTTPHeaders).
        activation = result["HumanLoopActivationOutput"]
        body_out["HumanLoopActivationOutput"] = activation
        headers |= {"x-loupe-human-loop-name": activation["HumanLoopName"],
                    "x-loupe-human-loop-arn": activation["HumanLoopArn"]}
    return JSONResponse(body_out, headers=headers)


def _flag(value: str | None, name: str) -> bool:
    if value is None:
        return True
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise AilabError("ERROR_INVALID_PARAMETER", f"{name} must be true or false")


def _threshold(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise AilabError("ERROR_INVALID_PARAMETER", "threshold must be a finite number (the model's score "
                         "units, see Threshold in the model's evaluation)")
    return number


@native_router.post("/projects/{project_name}/models/{model_version}/detect")
async def detect_native(gw: GatewayDep, rid: RequestId, request: Request, project_name: str,
                        model_version: str, body: Body):
    """DetectAnomalies with options: ?threshold=<score> (default: the model's), ?mask=false,
    ?heatmap=true (an RGBA PNG of the anomaly map, as "Heatmap")."""
    q = request.query_params
    threshold, with_mask = _threshold(q.get("threshold")), _flag(q.get("mask"), "mask")
    with_heatmap = _flag(q.get("heatmap"), "heatmap") if "heatmap" in q else False
    try:
        result, headers = await detect(gw, rid, project_name, model_version,
                                       request.headers.get("content-type"), body, threshold=threshold,
                                       with_mask=with_mask, with_heatmap=with_heatmap)
    except LoupeError as err:
        code = err.error.ailab_code or AILAB_FOR_AWS[err.error.code]
        if err.error.code is ErrorCode.CONFLICT and err.error.resource_type is ResourceType.MODEL:
            code = "ERROR_RESOURCE_NOT_FOUND"  # not hosted: as the ingest path says it
        raise AilabError(code, err.error.message) from None
    status, envelope = ailab_envelope(request_id=rid, data=result)
    return JSONResponse(envelope, status_code=status, headers=headers)
