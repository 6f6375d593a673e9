"""What the gateway's routes share: settings, the Kafka request client, blob storage (claim checks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from loupe_common.blobs import BlobStore
from loupe_common.kafka import RequestClient
from loupe_common.settings import Settings

from .routing import RouteTable


@dataclass
class Gateway:
    settings: Settings
    rpc: RequestClient
    blobs: BlobStore
    routes: RouteTable


def _gateway(request: Request) -> Gateway:
    return request.app.state.gateway


GatewayDep = Annotated[Gateway, Depends(_gateway)]


def request_id(request: Request) -> str:
    return request.state.request_id


RequestId = Annotated[str, Depends(request_id)]
