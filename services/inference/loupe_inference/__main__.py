from __future__ import annotations

import uvicorn

from loupe_common.logs import configure_logging
from loupe_common.settings import Settings

from .app import create_app


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level, "inference")
    uvicorn.run(
        create_app(settings),
        host=settings.health_host,
        port=settings.health_port or 8084,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
