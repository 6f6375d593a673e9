"""How every message-only service process starts: settings, logging, then uvicorn serving the
service's ASGI app (its health routes) while FastStream runs its Kafka handlers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import uvicorn

from .logs import configure_logging
from .settings import Settings


def run_service(name: str, create_app: Callable[[Settings], Any], default_health_port: int) -> None:
    settings = Settings()
    configure_logging(settings.log_level, name)
    uvicorn.run(
        create_app(settings),
        host=settings.health_host,
        port=settings.health_port or default_health_port,
        log_level="warning",
        lifespan="on",
    )
