"""`make run`'s supervisor: a dead process is started again after a growing backoff, the backoff
resets once the process has run for a minute, and a failed restart is tried again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from loupe_local.supervise import Supervisor


class ProcessTable:
    """The part of a Stack the supervisor uses, over real child processes."""

    def __init__(self, logs_dir: Path) -> None:
        self.logs_dir = logs_dir
        self.processes: dict[str, subprocess.Popen] = {}
        self.fail_next = False

    def restart(self, name: str) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("port busy")
        self.processes[name] = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

    def kill(self, name: str) -> None:
        self.processes[name].kill()
        self.processes[name].wait()


def test_dead_processes_come_back_with_backoff(tmp_path):
    table = ProcessTable(tmp_path)
    said: list[str] = []
    table.restart("dataset")
    supervisor = Supervisor(table, say=said.append)  # type: ignore[arg-type]
    try:
        supervisor.check(now=0.0)
        assert said == []
        first = table.processes["dataset"].pid

        table.kill("dataset")
        supervisor.check(now=10.0)
        assert "dataset exited with code -9; restarting it in 1 s" in said[-1]
        supervisor.check(now=10.5)  # not yet
        assert table.processes["dataset"].poll() is not None
        supervisor.check(now=11.0)
        assert table.processes["dataset"].poll() is None and table.processes["dataset"].pid != first
        assert said[-1].startswith("dataset restarted")

        table.kill("dataset")  # dies again soon after: the wait doubles
        supervisor.check(now=12.0)
        assert "restarting it in 2 s" in said[-1]
        table.fail_next = True
        supervisor.check(now=14.0)
        assert "could not be restarted (port busy)" in said[-1]
        supervisor.check(now=14.1)
        assert "restarting it in 4 s" in said[-1]
        supervisor.check(now=18.1)
        assert table.processes["dataset"].poll() is None

        supervisor.check(now=18.1 + 61)  # ran for a minute: healthy again
        table.kill("dataset")
        supervisor.check(now=18.1 + 62)
        assert "restarting it in 1 s" in said[-1]
    finally:
        for proc in table.processes.values():
            proc.kill()
            proc.wait()


def test_a_child_started_from_a_passing_thread_outlives_it(tmp_path):
    """Linux's parent-death signal follows the forking thread; children must live as long as the
    process that started them, whichever thread asked (asyncio.to_thread, an executor)."""
    import threading
    import time

    from loupe_local.processes import spawn

    started: list[subprocess.Popen] = []
    thread = threading.Thread(target=lambda: started.append(spawn(
        [sys.executable, "-c", "import time; time.sleep(60)"], env=dict(os.environ), log_file=tmp_path / "c.log")))
    thread.start()
    thread.join()
    time.sleep(0.5)
    try:
        assert started[0].poll() is None
    finally:
        started[0].kill()
        started[0].wait()


def test_the_make_run_entry_point_loads_and_explains_its_usage():
    """`make run` is `python -m loupe_local run`; anything else gets the usage line (exit 2)."""
    done = subprocess.run([sys.executable, "-m", "loupe_local"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "usage: python -m loupe_local run" in done.stderr
