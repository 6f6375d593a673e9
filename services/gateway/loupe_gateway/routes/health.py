"""Open health routes: /health (the process is alive) and /ready (Kafka answers)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..context import GatewayDep

router = APIRouter()


@router.get("/health")
async def health() -> dict:
    return {"status": "ok"}


@router.get("/ready")
async def ready(gw: GatewayDep) -> JSONResponse:
    ok = await gw.rpc.broker_ready()
    return JSONResponse({"status": "ok" if ok else "kafka unreachable"}, status_code=200 if ok else 503)
