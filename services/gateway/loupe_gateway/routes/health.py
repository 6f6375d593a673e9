"""Open health routes: /health (the process is alive) and /ready (Kafka answers; otherwise what is missing)."""

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
    missing = await gw.rpc.readiness()
    return JSONResponse({"status": missing or "ok"}, status_code=503 if missing else 200)
