from __future__ import annotations

from loupe_common.runner import run_service

from .app import create_app


def main() -> None:
    run_service("dataset", create_app, default_health_port=8081)


if __name__ == "__main__":
    main()
