"""`make run`: start the local system, print what runs where, stop everything on Ctrl-C/SIGTERM."""

from __future__ import annotations

import os
import signal
import sys
import time

from rich.console import Console
from rich.table import Table

from loupe_common.settings import Settings

from .stack import OWN_BROKER_ENV, Stack
from .supervise import Supervisor


def run() -> int:
    console = Console(log_path=False)
    settings = Settings()
    kafka_bootstrap = os.environ.get("LOUPE_KAFKA_BOOTSTRAP") or None
    stack = Stack(
        data_dir=settings.data_dir.resolve(),
        gateway_port=settings.gateway_port,
        kafka_bootstrap=kafka_bootstrap,
        extra_env={} if kafka_bootstrap else {k: v for k, v in OWN_BROKER_ENV.items() if k not in os.environ},
    )
    stopping = False

    def request_stop(signum: int, frame: object) -> None:  # noqa: ARG001
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    started = time.monotonic()
    with console.status("Starting Loupe: broker, services, gateway…"):
        stack.start()
    elapsed = time.monotonic() - started

    table = Table(title=f"Loupe is running (ready in {elapsed:.1f} s)")
    table.add_column("process")
    table.add_column("pid", justify="right")
    table.add_column("where")
    for name, proc in stack.processes.items():
        where = f"kafka://{stack.kafka_bootstrap}" if name == "kafka" else stack.health_url(name)
        table.add_row(name, str(proc.pid), where)
    console.print(table)
    console.print(f"Lookout for Vision endpoint: [bold]{stack.endpoint_url}[/bold]  "
                  f"(region {settings.region})")
    console.print(f"Web console: {stack.endpoint_url}/loupe/console  "
                  f"(reviewers: {stack.endpoint_url}/loupe/review)")
    console.print(
        f"Development credentials: AWS_ACCESS_KEY_ID={settings.access_key_id} "
        f"AWS_SECRET_ACCESS_KEY={settings.secret_access_key.get_secret_value()}"
    )
    if not settings.embedded_store:
        store = "LOUPE_MONGO_URL"
    elif settings.embedded_store_durable:
        store = f"embedded store kept in {stack.data_dir / 'state'}"
    else:
        store = "embedded in-memory store (state is lost when a service stops)"
    console.print(f"MongoDB: {store}")
    console.print(f"Logs: {stack.logs_dir}   Data: {stack.data_dir}   Stop: Ctrl-C")

    supervisor = Supervisor(stack, say=lambda text: console.log(text))
    try:
        while not stopping:
            supervisor.check()
            time.sleep(0.5)
    finally:
        with console.status("Stopping…"):
            stack.stop()
        console.print("Stopped.")
    return 0


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] != "run":
        print("usage: python -m loupe_local run", file=sys.stderr)
        sys.exit(2)
    sys.exit(run())


if __name__ == "__main__":
    main()
