"""Access keys (`loupe key create/list/enable/disable/delete`): signed calls to the gateway's
/loupe/v1/access-keys routes, which only an admin key may make."""

from __future__ import annotations

import urllib.parse
from typing import Any

from .connection import Connection, native_call

ROUTE = "/loupe/v1/access-keys"


def create(conn: Connection, role: str, description: str) -> dict[str, Any]:
    return native_call(conn, "POST", ROUTE, {"role": role, "description": description})


def list_all(conn: Connection) -> list[dict[str, Any]]:
    return native_call(conn, "GET", ROUTE)["access_keys"]


def set_status(conn: Connection, key_id: str, status: str) -> dict[str, Any]:
    return native_call(conn, "PATCH", f"{ROUTE}/{urllib.parse.quote(key_id, safe='')}", {"status": status})


def delete(conn: Connection, key_id: str) -> None:
    native_call(conn, "DELETE", f"{ROUTE}/{urllib.parse.quote(key_id, safe='')}")
