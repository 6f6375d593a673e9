from __future__ import annotations

import uvicorn

from loupe_common.logs import configure_logging
from loupe_common.settings import Settings

from .main import create_app


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level, "gateway")
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
