"""Reviewer accounts for the review page (`loupe reviewer add/list/remove`): signed calls to the
gateway's /loupe/v1/reviewers routes, with the same identity as every other `loupe` command."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from .connection import SERVICE_NAME, Connection


class ReviewerError(Exception):
    pass


def call(conn: Connection, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One signed Loupe-native call; the envelope's data, or ReviewerError with its message."""
    data = json.dumps(body).encode() if body is not None else b""
    url = conn.endpoint_url + path
    request = AWSRequest(method=method, url=url, data=data,
                         headers={"Content-Type": "application/json"} if body is not None else {})
    SigV4Auth(conn.credentials(), SERVICE_NAME, conn.region).add_auth(request)
    try:
        response = httpx.request(method, url, content=data, headers=dict(request.headers.items()), timeout=30)
    except httpx.HTTPError as exc:
        raise ReviewerError(f"Loupe at {conn.endpoint_url} is not reachable ({exc})") from None
    try:
        envelope = response.json()
    except ValueError:
        raise ReviewerError(f"HTTP {response.status_code} from {url}") from None
    if response.status_code != 200:
        raise ReviewerError(envelope.get("error_detail", {}).get("message") or f"HTTP {response.status_code}")
    return envelope.get("data") or {}


def add(conn: Connection, username: str, password: str) -> dict[str, Any]:
    return call(conn, "POST", "/loupe/v1/reviewers", {"username": username, "password": password})


def list_all(conn: Connection) -> list[dict[str, Any]]:
    return call(conn, "GET", "/loupe/v1/reviewers")["reviewers"]


def remove(conn: Connection, username: str) -> None:
    call(conn, "DELETE", "/loupe/v1/reviewers/" + urllib.parse.quote(username, safe=""))
