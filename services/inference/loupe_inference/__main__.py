from __future__ import annotations

from loupe_common.runner import run_service

from .app import create_app


def main() -> None:
    run_service("inference", create_app, default_health_port=8084)


if __name__ == "__main__":
    main()
