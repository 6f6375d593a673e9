"""What the gateway's routes share: settings, the Kafka request client, blob storage (claim checks)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from loupe_common.blobs import BlobStore
from loupe_common.buckets import BucketRoot, S3Buckets
from loupe_common.errors import LoupeError
from loupe_common.hosting_messages import H_BLOB
from loupe_common.messages import Reply
from loupe_common.kafka import RequestClient
from loupe_common.settings import Settings

from .admission import DetectAdmission
from .keyring import KeyRing
from .replay_guard import ReplayGuard
from .routing import RouteTable
from .sign_in_guard import SignInGuard


@dataclass
class Gateway:
    settings: Settings
    rpc: RequestClient
    blobs: BlobStore
    routes: RouteTable
    buckets: BucketRoot | S3Buckets  # s3:// locations (human loop outputs), one client per process
    sign_ins: SignInGuard = field(default_factory=SignInGuard)  # password guessing, per source and account
    admission: DetectAdmission = field(init=False)  # DetectAnomalies queue depth per model
    keys: KeyRing = field(init=False)  # the access keys accepted, with their roles
    replays: ReplayGuard = field(default_factory=ReplayGuard)  # signatures of changes already taken

    def __post_init__(self) -> None:
        self.admission = DetectAdmission(self.settings.detect_timeout_seconds)
        self.keys = KeyRing(self.settings)


def secure_cookie(request: Request, settings: Settings) -> bool:
    """Whether a session cookie is marked Secure: always with LOUPE_SECURE_COOKIES, else when the
    request came over HTTPS (directly, or through a TLS-ending proxy that says so)."""
    return (settings.secure_cookies or request.url.scheme == "https"
            or request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower() == "https")


def source_of(request: Request) -> str:
    """The caller's address (the proxy's, behind one: Loupe does not trust X-Forwarded-For)."""
    return request.client.host if request.client else "unknown"


def _gateway(request: Request) -> Gateway:
    return request.app.state.gateway


GatewayDep = Annotated[Gateway, Depends(_gateway)]


def request_id(request: Request) -> str:
    return request.state.request_id


RequestId = Annotated[str, Depends(request_id)]


async def send_image(gw: Gateway, topic: str, data: bytes, headers: dict[str, str], *, timeout: float,
                     kind: str) -> Reply:
    """An image request to the inference workers: the bytes in the Kafka record, or through blob
    storage (claim check) above LOUPE_CLAIM_CHECK_BYTES; the worker deletes the blob after use.
    Raises LoupeError when no reply comes within `timeout`."""
    headers = dict(headers)
    value, blob = data, None
    if len(data) > gw.settings.claim_check_bytes:
        blob = f"transfer/{kind}/{uuid.uuid4().hex}"
        await gw.blobs.put(blob, data)
        value, headers[H_BLOB] = b"", blob
    try:
        return await gw.rpc.request(topic, value, key=None, headers=headers, timeout=timeout)
    except LoupeError:
        if blob:
            await gw.blobs.delete(blob)
        raise
