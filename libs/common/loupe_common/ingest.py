"""The ingest topic's message format and the result envelope workers publish for every message.

A producer sends one image per record, in either form:

* raw bytes as the value, with headers `loupe-project`, `loupe-model-version`, `content-type`
  (image/png | image/jpeg) and optionally `loupe-image-id` (the producer's own id);
* a JSON value (header `content-type: application/json`, or no headers at all):
  `{"project": ..., "model_version": "1", "image_id": ..., "content_type": "image/png",
    "image": "<base64>"}` or, instead of `image`, `"image_ref": "s3://bucket/key"`.

Every record gets exactly one result on loupe.ingest.results, in the AILabTools envelope, with
`image_id` and the record's position so a producer can match each image to its outcome.
`request_id` is derived from the record's position: a redelivered record has the same id.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from .errors import AILAB_CODES, ailab_envelope

H_PROJECT = "loupe-project"
H_MODEL_VERSION = "loupe-model-version"
H_IMAGE_ID = "loupe-image-id"
H_CONTENT_TYPE = "content-type"

IMAGE_TYPES = ("image/png", "image/jpeg")
MAX_IMAGE_ID = 1024
_PROJECT = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_\-]{0,254}$")
_VERSION = re.compile(r"^[1-9][0-9]{0,9}$")
_NAMESPACE = uuid.UUID("5b0a3e5e-7c1d-4f43-9d0c-6c6f75706521")


class IngestRejected(Exception):
    """The record cannot be scored; the result carries this AILabTools code and message."""

    def __init__(self, code: str, message: str) -> None:
        if code not in AILAB_CODES:  # a programming error: the catalogue lists every code sent
            raise AssertionError(f"not an AILabTools code: {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class IngestImage:
    project_name: str
    model_version: str
    image_id: str | None
    content_type: str | None
    data: bytes | None  # the bytes, or None when image_ref names them
    image_ref: str | None = None


@dataclass(frozen=True)
class Position:
    topic: str
    partition: int
    offset: int

    @property
    def request_id(self) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{self.topic}/{self.partition}/{self.offset}"))


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def image_id_of(value: bytes | None, headers: dict[str, bytes]) -> str | None:
    """The producer's image id, best effort (also for records that fail to parse)."""
    if H_IMAGE_ID in headers:
        return (_text(headers[H_IMAGE_ID]) or "")[:MAX_IMAGE_ID]
    if value and value[:1] == b"{":
        try:
            found = json.loads(value).get("image_id")
            return str(found)[:MAX_IMAGE_ID] if found is not None else None
        except (ValueError, AttributeError):
            return None
    return None


def parse(value: bytes | None, headers: dict[str, bytes]) -> IngestImage:
    content_type = (_text(headers.get(H_CONTENT_TYPE)) or "").split(";")[0].strip().lower()
    if H_PROJECT in headers or content_type in IMAGE_TYPES:
        fields: dict[str, Any] = {
            "project": _text(headers.get(H_PROJECT)),
            "model_version": _text(headers.get(H_MODEL_VERSION)),
            "image_id": image_id_of(None, headers),
            "content_type": content_type or None,
        }
        data = value or b""
        ref = None
    else:
        try:
            fields = json.loads(value or b"")
        except ValueError:
            raise IngestRejected("ERROR_PARAMETERS", "The record is neither an image with loupe-* headers "
                                 "nor a JSON envelope") from None
        if not isinstance(fields, dict):
            raise IngestRejected("ERROR_PARAMETERS", "The JSON envelope must be an object")
        ref = fields.get("image_ref")
        encoded = fields.get("image")
        if (ref is None) == (encoded is None):
            raise IngestRejected("MISSING_PARAMETERS",
                                 "The envelope needs exactly one of image (base64) and image_ref")
        if encoded is not None:
            try:
                data = base64.b64decode(str(encoded), validate=True)
            except (binascii.Error, ValueError):
                raise IngestRejected("ERROR_PARAMETERS", "image is not valid base64") from None
        else:
            data = None
            if not isinstance(ref, str) or not ref.startswith(("s3://", "file://")):
                raise IngestRejected("ERROR_PARAMETERS", "image_ref must be an s3:// or file:// reference")
    project = fields.get("project")
    version = fields.get("model_version")
    if project is None or version is None:
        raise IngestRejected("MISSING_PARAMETERS", "project and model_version are required")
    project, version = str(project), str(version)
    if not _PROJECT.match(project):
        raise IngestRejected("ERROR_INVALID_PARAMETER",
                             f"project '{project[:64]}' is not a valid project name")
    if not _VERSION.match(version):
        raise IngestRejected("ERROR_INVALID_PARAMETER",
                             f"model_version '{version[:16]}' must be a version number")
    declared = fields.get("content_type")
    if declared is not None and str(declared).lower() not in IMAGE_TYPES:
        raise IngestRejected("UNSUPPORTED_FILE_TYPES",
                             f"content type '{declared}' is not image/png or image/jpeg")
    image_id = fields.get("image_id")
    return IngestImage(project, version, None if image_id is None else str(image_id)[:MAX_IMAGE_ID],
                       None if declared is None else str(declared).lower(), data, ref)


def result_envelope(
    position: Position,
    *,
    image_id: str | None,
    project_name: str | None = None,
    model_version: str | None = None,
    detection: dict | None = None,
    human_loop: dict | None = None,
    code: str = "",
    message: str = "",
) -> dict[str, Any]:
    data = None
    if detection is not None:
        data = {"DetectAnomalyResult": detection}
        if human_loop is not None:
            data["HumanLoopActivationOutput"] = human_loop
    _, body = ailab_envelope(request_id=position.request_id, code=code, message=message, data=data)
    body["image_id"] = image_id
    body["project"] = project_name
    body["model_version"] = model_version
    body["source"] = {"topic": position.topic, "partition": position.partition, "offset": position.offset}
    return body
