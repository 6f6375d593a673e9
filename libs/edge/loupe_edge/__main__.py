"""`python -m loupe_edge serve --models DIR`: serve the bundles in DIR on the Edge Agent's socket.

A Greengrass component's recipe runs exactly this (loupe_training.packaging writes it). Models
start STOPPED unless --start names them (or `all`); clients start them with StartModel.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from . import __version__
from .bundle import EDGE_AGENT_SOCKET


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loupe-edge", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"loupe-edge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve bundles over the Edge Agent gRPC contract")
    run.add_argument("--models", type=Path, required=True,
                     help="a bundle (folder or .zip) or a folder of them")
    run.add_argument("--socket", default=EDGE_AGENT_SOCKET,
                     help=f"Unix socket path (default {EDGE_AGENT_SOCKET})")
    run.add_argument("--address", help="listen on host:port instead of the Unix socket")
    run.add_argument("--start", action="append", default=[], metavar="COMPONENT",
                     help="start this model at once (repeatable; `all` for every model)")
    run.add_argument("--workers", type=int, default=1, help="frames scored at once (default 1)")
    run.add_argument("--queue", type=int, default=2,
                     help="frames that may wait for a worker before RESOURCE_EXHAUSTED (default 2)")
    run.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 1)),
                     help="onnxruntime threads per frame (default: the CPU count)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s",
                        stream=sys.stderr)
    return serve(args)


def serve(args: argparse.Namespace) -> int:
    from .server import EdgeAgent, bundles_in  # grpc is imported only to serve
    from .server import serve as start_server

    log = logging.getLogger("loupe_edge")
    if not args.models.exists():
        log.error("%s does not exist", args.models)
        return 2
    bundles = bundles_in(args.models)
    if not bundles:
        log.error("no usable bundle in %s", args.models)
        return 2
    if args.workers < 1 or args.queue < 0 or args.threads < 1:
        log.error("--workers and --threads must be at least 1, --queue at least 0")
        return 2
    agent = EdgeAgent(bundles, workers=args.workers, queue=args.queue, threads=args.threads)
    if args.address:
        address = args.address
    else:
        socket = Path(args.socket)
        if socket.is_socket():
            socket.unlink()  # left behind by a runtime that did not exit cleanly
        address = f"unix://{socket}"
    server = start_server(agent, address, workers=args.workers, queue=args.queue)
    from .server import Refused

    for name in bundles if "all" in args.start else args.start:
        try:
            agent.start(name)
        except Refused as refused:
            log.error("--start %s: %s", name, refused)
    log.info("loupe-edge %s (from %s) serving %s on %s", __version__, Path(__file__).parent.parent,
             ", ".join(sorted(bundles)), address)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.stop(grace=5).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
