"""Reading request bodies with a size limit (a huge body is refused before it is read whole)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from loupe_common import json_bodies
from loupe_common.errors import validation


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body exceeds {limit} bytes")
        self.limit = limit


async def read_body(request: Request, limit: int) -> bytes:
    if hasattr(request.state, "body"):
        return request.state.body
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise BodyTooLarge(limit)
    request.state.body = bytes(chunks)
    # Starlette replays a cached _body to later readers (request.form()); the stream is spent.
    request._body = request.state.body  # noqa: SLF001
    return request.state.body


def parse_json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        value = json_bodies.loads(body)
    except json_bodies.JsonRefused as refused:
        raise validation(f"The request body is refused: {refused}") from None  # in words, never a 500
    if not isinstance(value, dict):
        raise validation("The request body must be a JSON object")
    return value
