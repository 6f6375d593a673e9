"""Open health routes: /health (the process is alive), /ready (Kafka answers; otherwise what is
missing) and /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from loupe_common.metrics import exposition

from ..context import GatewayDep

router = APIRouter()


@router.get("/health")
async def health() -> dict:
    return {"status": "ok"}


@router.get("/ready")
async def ready(gw: GatewayDep) -> JSONResponse:
    missing = await gw.rpc.readiness()
    return JSONResponse({"status": missing or "ok"}, status_code=503 if missing else 200)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    body, content_type = exposition()
    return Response(body, media_type=content_type)
