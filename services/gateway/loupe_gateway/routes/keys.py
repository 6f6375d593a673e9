"""Access keys on Loupe-native routes (AILabTools envelope), for admin keys only: create (the
secret is in that answer and never again), list, enable or disable, delete. The human-loop
service keeps them (loupe_common.access_keys)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from loupe_common import human_loop_messages as m
from loupe_common.access_keys import Area

from ..auth import signed_body
from ..bodies import parse_json_object
from ..context import GatewayDep, RequestId
from ..validation import build
from .review import ask, envelope

_body = signed_body(16 * 1024, area=Area.KEYS)
router = APIRouter(prefix="/loupe/v1/access-keys", dependencies=[Depends(_body)])
Body = Annotated[bytes, Depends(_body)]


@router.post("")
async def create_access_key(gw: GatewayDep, rid: RequestId, body: Body) -> JSONResponse:
    fields = parse_json_object(body)
    cmd = build(m.CreateAccessKey, request_id=rid, role=fields.get("role"),
                description=fields.get("description"))
    response = envelope(rid, await ask(gw, cmd, "access-keys"))
    response.headers["Cache-Control"] = "no-store"  # the answer carries the secret
    return response


@router.get("")
async def list_access_keys(gw: GatewayDep, rid: RequestId) -> JSONResponse:
    return envelope(rid, await ask(gw, build(m.ListAccessKeys, request_id=rid), "access-keys"))


@router.patch("/{key_id}")
async def update_access_key(gw: GatewayDep, rid: RequestId, key_id: str, body: Body) -> JSONResponse:
    fields = parse_json_object(body)
    cmd = build(m.UpdateAccessKey, request_id=rid, key_id=key_id, status=fields.get("status"))
    return envelope(rid, await ask(gw, cmd, "access-keys"))


@router.delete("/{key_id}")
async def delete_access_key(gw: GatewayDep, rid: RequestId, key_id: str) -> JSONResponse:
    return envelope(rid, await ask(gw, build(m.DeleteAccessKey, request_id=rid, key_id=key_id),
                                   "access-keys"))
