"""Child processes that die with their parent and stop cleanly."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Linux: if the runner is killed outright, the kernel sends SIGTERM to its children.
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


# Linux sends the parent-death signal when the *thread* that forked the child ends, not the
# process: a child started from a short-lived thread (asyncio.to_thread, an executor shut down
# by asyncio.run) would be killed when that thread goes. Every child is forked from this one
# thread instead, which lives as long as the process.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loupe-spawner")


def spawn(args: list[str], *, env: dict[str, str], log_file: Path) -> subprocess.Popen:
    log_file.parent.mkdir(parents=True, exist_ok=True)

    def start() -> subprocess.Popen:
        with log_file.open("ab") as out:
            return subprocess.Popen(  # noqa: S603 - argv built by the launcher from fixed parts, no shell
                args, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl
            )

    return _SPAWNER.submit(start).result()


def stop(processes: list[subprocess.Popen], timeout: float = 10.0) -> None:
    """SIGTERM each process, wait for all, SIGKILL whatever is still alive after the timeout."""
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout  # one deadline for all, not one each
    for proc in processes:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python_module(module: str) -> list[str]:
    return [sys.executable, "-m", module]


def base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LOUPE_")}
