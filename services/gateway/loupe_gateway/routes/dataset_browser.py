"""Loupe-native dataset browsing (AILabTools envelope), what the console's grid uses: a page of a
dataset's entries with their image and mask file names, those files, full size or as cached
thumbnails, and removing entries (Lookout's API cannot). Entries come from the dataset service;
files from blob storage by the names it gives (loupe_common.dataset_files)."""

from __future__ import annotations

import asyncio
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from PIL import Image

from loupe_common import dataset_files
from loupe_common import dataset_messages as dm
from loupe_common.blobs import BlobNotFound
from loupe_common.errors import AilabError, ailab_envelope
from loupe_common.images import as_seen
from loupe_common.lookout import AnomalyClass
from loupe_common.topics import DATASET_COMMANDS

from ..auth import signed_body
from ..bodies import parse_json_object
from ..context import Gateway, GatewayDep, RequestId
from ..validation import build

router = APIRouter(prefix="/loupe/v1/projects/{project_name}/datasets/{dataset_type}")
NO_BODY = [Depends(signed_body(0))]
RemovalBody = Annotated[bytes, Depends(signed_body(256 * 1024))]
THUMBNAIL_PIXELS = 192
MEDIA = {"png": "image/png", "jpg": "image/jpeg"}
# Content-addressed: a name always means the same bytes.
IMMUTABLE = {"Cache-Control": "private, max-age=86400, immutable"}
LABELS: dict[str, dict[str, Any]] = {"normal": {"anomaly_class": AnomalyClass.NORMAL},
                                     "anomaly": {"anomaly_class": AnomalyClass.ANOMALY},
                                     "unlabelled": {"labeled": False}}


@router.get("/entries", dependencies=NO_BODY)
async def browse_entries(
    gw: GatewayDep, rid: RequestId, project_name: str, dataset_type: str,
    label: Annotated[Literal["normal", "anomaly", "unlabelled"] | None, Query()] = None,
    contains: Annotated[str | None, Query(alias="source_ref_contains")] = None,
    max_results: Annotated[int, Query(alias="max_results")] = 100,
    next_token: Annotated[str | None, Query(alias="next_token")] = None,
) -> JSONResponse:
    cmd = build(dm.ListDatasetEntries, request_id=rid, project_name=project_name, dataset_type=dataset_type,
                source_ref_contains=contains or None, max_results=max_results, next_token=next_token,
                detail=True, **LABELS.get(label or "", {}))
    found = (await gw.rpc.request(DATASET_COMMANDS, cmd, key=project_name)).unwrap()
    status, body = ailab_envelope(request_id=rid, data={"entries": found["Entries"],
                                                        "next_token": found.get("NextToken")})
    return JSONResponse(body, status_code=status)


@router.get("/files/{name:path}", dependencies=NO_BODY)
async def dataset_file(gw: GatewayDep, rid: RequestId, project_name: str, dataset_type: str, name: str,
                       size: Annotated[Literal["full", "thumbnail"], Query()] = "full") -> Response:
    build(dm.DescribeDataset, request_id=rid, project_name=project_name, dataset_type=dataset_type)
    if not dataset_files.FILE_NAME.match(name):
        raise AilabError("ERROR_FILE_NOT_FOUND", f"No dataset file is named {name}")
    prefix = dataset_files.blob_prefix(project_name, dataset_type)
    if size == "thumbnail":
        return Response(await _thumbnail(gw, prefix, name), media_type="image/jpeg", headers=IMMUTABLE)
    return Response(await _read(gw, f"{prefix}/{name}", name), media_type=MEDIA[name.rsplit(".", 1)[1]],
                    headers=IMMUTABLE)


@router.post("/entries/remove")
async def remove_entries(gw: GatewayDep, rid: RequestId, project_name: str, dataset_type: str,
                         body: RemovalBody) -> JSONResponse:
    """{"source_refs": [...]} (at most 100): the dataset is UPDATE_IN_PROGRESS, then UPDATE_COMPLETE."""
    fields = parse_json_object(body)
    cmd = build(dm.RemoveDatasetEntries, request_id=rid, project_name=project_name, dataset_type=dataset_type,
                source_refs=fields.get("source_refs"))
    found = (await gw.rpc.request(DATASET_COMMANDS, cmd, key=project_name)).unwrap()
    status, out = ailab_envelope(request_id=rid, data=found)
    return JSONResponse(out, status_code=status)


async def _read(gw: Gateway, key: str, name: str) -> bytes:
    try:
        return await gw.blobs.get(key)
    except BlobNotFound:
        raise AilabError("ERROR_FILE_NOT_FOUND", f"{name} is not in this dataset") from None


async def _thumbnail(gw: Gateway, prefix: str, name: str) -> bytes:
    """Made once per image, kept beside the dataset's images (deleted with the dataset)."""
    key = dataset_files.thumbnail_key(prefix, name)
    try:
        return await gw.blobs.get(key)
    except BlobNotFound:
        pass
    small = await asyncio.to_thread(_shrink, await _read(gw, f"{prefix}/{name}", name))
    await gw.blobs.put(key, small)
    return small


def _shrink(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))  # JPEG: decode at a fraction of the size
        small = as_seen(image).convert("RGB")
    small.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    small.save(out, "JPEG", quality=82)
    return out.getvalue()
