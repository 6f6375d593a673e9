"""Reviewer accounts for the review page (`loupe reviewer add/list/remove`): signed calls to the
gateway's /loupe/v1/reviewers routes, with the same identity as every other `loupe` command."""

from __future__ import annotations

import urllib.parse
from typing import Any

from .connection import Connection, native_call as call


def add(conn: Connection, username: str, password: str) -> dict[str, Any]:
    return call(conn, "POST", "/loupe/v1/reviewers", {"username": username, "password": password})


def list_all(conn: Connection) -> list[dict[str, Any]]:
    return call(conn, "GET", "/loupe/v1/reviewers")["reviewers"]


def remove(conn: Connection, username: str) -> None:
    call(conn, "DELETE", "/loupe/v1/reviewers/" + urllib.parse.quote(username, safe=""))
