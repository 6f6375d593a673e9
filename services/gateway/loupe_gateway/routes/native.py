"""Loupe-native routes (AILabTools envelope): image upload into a project."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from loupe_common import dataset_messages as dm
from loupe_common.errors import AilabError, ailab_envelope
from loupe_common.images import AILAB_CODES_FOR, MAX_IMAGE_BYTES, ImageRejected, Rejection, inspect_image
from loupe_common.topics import DATASET_COMMANDS

from ..auth import signed_body
from ..context import GatewayDep, RequestId
from ..validation import build

UPLOAD_BODY_LIMIT = MAX_IMAGE_BYTES + 64 * 1024  # room for multipart framing
IMAGE_TYPES = {"image/png", "image/jpeg"}

router = APIRouter(prefix="/loupe/v1")
Body = Annotated[bytes, Depends(signed_body(UPLOAD_BODY_LIMIT))]


async def _image_from_request(request: Request, body: bytes) -> tuple[bytes, str | None, str | None]:
    """The image bytes, file name and declared type, from a raw body or a multipart form (field
    `file` or `image`)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=8)
        except MultiPartException as exc:
            raise AilabError("ERROR_PARAMETERS", f"Malformed multipart body: {exc.message}") from None
        upload = form.get("file") or form.get("image")
        if not isinstance(upload, UploadFile):
            raise AilabError("MISSING_PARAMETERS", "The multipart form needs a file field named 'file'")
        return await upload.read(), upload.filename, upload.content_type
    if content_type not in IMAGE_TYPES:
        raise AilabError(
            "UNSUPPORTED_FILE_TYPES",
            "Content-Type must be image/png, image/jpeg or multipart/form-data, "
            f"not '{content_type or 'none'}'",
        )
    if not body:
        raise AilabError("MISSING_PARAMETERS", "The request body is empty; send the image bytes")
    return body, request.query_params.get("name"), content_type


@router.post("/projects/{project_name}/images")
async def upload_image(gw: GatewayDep, rid: RequestId, request: Request, project_name: str, body: Body):
    build(dm.DescribeProject, request_id=rid, project_name=project_name)
    data, file_name, declared = await _image_from_request(request, body)
    try:
        info = await asyncio.to_thread(inspect_image, data)
    except ImageRejected as exc:
        raise AilabError(AILAB_CODES_FOR[exc.reason], str(exc)) from None
    if declared in IMAGE_TYPES and declared != info.content_type:  # as DetectAnomalies refuses it
        raise AilabError(AILAB_CODES_FOR[Rejection.UNSUPPORTED_TYPE],
                         f"Content-Type is {declared} but the bytes are a {info.format} image")
    upload_key = f"transfer/uploads/{uuid.uuid4().hex}"
    await gw.blobs.put(upload_key, data)
    cmd = build(
        dm.StoreUpload, request_id=rid, project_name=project_name, upload_key=upload_key,
        file_name=(file_name or None) and file_name[:255],
    )
    result = (await gw.rpc.request(DATASET_COMMANDS, cmd, key=project_name)).unwrap()
    status, envelope = ailab_envelope(request_id=rid, data=result)
    return JSONResponse(envelope, status_code=status)
