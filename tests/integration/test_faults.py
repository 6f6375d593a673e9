"""Faults against the real local stack (a stack of this module's own: these tests kill its parts).

Each service is killed with SIGKILL under mixed load (control-plane calls, DetectAnomalies, images
on the ingest topic) and started again as `make run`'s supervisor would. Afterwards every
project, dataset, model, flow definition, reviewer and human loop is as it was, the hosted model
answers, no status is left in a transitional state, and every image sent on the ingest topic has
exactly one result. Recovery times are printed (run with -s); the longer fault run with figures is
tests/benchmarks/bench_faults.py."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from helpers import IngestStream as Stream
from helpers import ingest_headers, make_client, pattern_png, signed_request, train_and_host

PROJECT = "faults"
SERVICES = ["dataset", "training", "hosting", "human_loop", "inference", "gateway"]
TRANSITIONAL = ("IN_PROGRESS", "TRAINING", "STARTING_HOSTING", "STOPPING_HOSTING")
RECOVERY_SECONDS = 30.0


def native(stack, method: str, path: str, body: dict | None = None) -> dict:
    r = signed_request(stack.endpoint_url, method, path, body=json.dumps(body).encode() if body else b"",
                       headers={"Content-Type": "application/json"} if body else {})
    assert r.status_code == 200, r.text
    return r.json()["data"]


@pytest.fixture(scope="module")
def faulty(tmp_path_factory) -> Iterator:
    from loupe_local.stack import Stack

    stack = Stack.on_free_ports(tmp_path_factory.mktemp("faults"),
                                extra_env={"LOUPE_REQUEST_TIMEOUT_SECONDS": "8"})
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@dataclass
class World:
    lookout: object
    a2i: object
    flow: str
    loop: str


@pytest.fixture(scope="module")
def world(faulty) -> World:
    lookout = make_client("lookoutvision", faulty.endpoint_url)
    a2i = make_client("sagemaker-a2i-runtime", faulty.endpoint_url)
    train_and_host(lookout, faulty.data_dir / "s3", PROJECT, test_normal=4, test_anomalous=4)
    flow = f"faults-{uuid.uuid4().hex[:6]}"
    created = native(faulty, "POST", "/loupe/v1/flow-definitions", {
        "FlowDefinitionName": flow, "HumanLoopConfig": {"TaskTitle": "T", "TaskDescription": "D", "TaskCount": 1}})
    native(faulty, "POST", "/loupe/v1/reviewers", {"username": "fault-reviewer", "password": "review-pass-123"})
    loop = f"{flow}-loop"
    a2i.start_human_loop(HumanLoopName=loop, FlowDefinitionArn=created["FlowDefinitionArn"],
                         HumanLoopInput={"InputContent": "{}"})
    return World(lookout, a2i, flow, loop)


def snapshot(stack, world: World) -> dict:
    """What a user can see of the system's state."""
    lookout = world.lookout
    datasets = {kind: lookout.describe_dataset(ProjectName=PROJECT, DatasetType=kind)["DatasetDescription"]
                for kind in ("train", "test")}
    model = lookout.describe_model(ProjectName=PROJECT, ModelVersion="1")["ModelDescription"]
    return {
        "projects": sorted(p["ProjectName"] for p in lookout.list_projects()["Projects"]),
        "datasets": {k: (d["Status"], d["ImageStats"]) for k, d in datasets.items()},
        "model": (model["Status"], model.get("Performance"), model.get("MinInferenceUnits")),
        "entries": len(lookout.list_dataset_entries(ProjectName=PROJECT, DatasetType="train")["DatasetEntries"]),
        "flows": sorted(f["FlowDefinitionName"] for f in
                        native(stack, "GET", "/loupe/v1/flow-definitions")["FlowDefinitions"]),
        "reviewers": sorted(r["username"] for r in native(stack, "GET", "/loupe/v1/reviewers")["reviewers"]),
        "loop": world.a2i.describe_human_loop(HumanLoopName=world.loop)["HumanLoopStatus"],
    }


@dataclass
class Load:
    """Each call in a loop of its own thread until stopped (a slow call does not hold up the
    others): every outcome with when it started and how long it took."""

    stack: object
    calls: list[tuple[float, str, bool, float]] = field(default_factory=list)  # (at, call, ok, seconds)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._run, args=(name,), daemon=True)
                         for name in ("DescribeProject", "DescribeModel", "DetectAnomalies")]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def gap(self, call: str) -> float:
        """The longest time between two successive successful answers to `call` (the outage a
        caller saw)."""
        done = sorted(at + took for at, name, ok, took in self.calls if name == call and ok)
        return max((b - a for a, b in zip(done, done[1:])), default=float("nan"))

    def _run(self, name: str) -> None:
        lookout = make_client("lookoutvision", self.stack.endpoint_url)
        image = pattern_png(9100)
        call = {
            "DescribeProject": lambda: lookout.describe_project(ProjectName=PROJECT),
            "DescribeModel": lambda: lookout.describe_model(ProjectName=PROJECT, ModelVersion="1"),
            "DetectAnomalies": lambda: lookout.detect_anomalies(ProjectName=PROJECT, ModelVersion="1",
                                                                Body=image, ContentType="image/png"),
        }[name]
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                call()
                ok = True
            except Exception:  # noqa: BLE001 - an outage's error is an outcome, recorded
                ok = False
            self.calls.append((started, name, ok, time.monotonic() - started))
            time.sleep(0.05)


def wait_until(check, timeout: float) -> float:
    """Seconds until check() stops raising / returns truthy; fails after `timeout`."""
    started = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - started
        except Exception:  # noqa: BLE001 - not recovered yet
            if time.monotonic() - started > timeout:
                raise
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not recovered after {timeout:.0f} s")
        time.sleep(0.2)


@pytest.mark.parametrize("service", SERVICES)
def test_a_killed_service_comes_back_as_it_was(faulty, world, service):
    before = snapshot(faulty, world)
    assert before["model"][0] == "HOSTED" and before["loop"] == "InProgress"
    images = [pattern_png(9200 + i) for i in range(10)]

    async def stream_through_the_kill() -> Stream:
        async with Stream(faulty.kafka_bootstrap) as stream:
            for i in range(15):
                await stream.send(f"before-{i}", images[i % 10], ingest_headers(PROJECT, f"before-{i}"))
            proc = faulty.processes[service]
            proc.kill()
            await asyncio.to_thread(proc.wait, 10)
            for i in range(15):
                await stream.send(f"during-{i}", images[i % 10], ingest_headers(PROJECT, f"during-{i}"))
            await asyncio.to_thread(faulty.restart, service)
            await asyncio.to_thread(faulty.wait_ready, [service], 60)
            for i in range(15):
                await stream.send(f"after-{i}", images[i % 10], ingest_headers(PROJECT, f"after-{i}"))
            await stream.collect(timeout=90)
            return stream

    with Load(faulty) as load:
        time.sleep(0.5)
        stream = asyncio.run(stream_through_the_kill())
        recovery = wait_until(lambda: snapshot(faulty, world) == before and world.lookout.detect_anomalies(
            ProjectName=PROJECT, ModelVersion="1", Body=images[0], ContentType="image/png"), RECOVERY_SECONDS)
        time.sleep(1.0)
    print(f"\n{service} killed and restarted: longest wait between two answers: DetectAnomalies "
          f"{load.gap('DetectAnomalies'):.1f} s, DescribeProject {load.gap('DescribeProject'):.1f} s; state "
          f"back {recovery:.1f} s after the service was ready; {sum(not c[2] for c in load.calls)} of "
          f"{len(load.calls)} calls failed")

    missing = set(stream.sent) - set(stream.results)
    duplicated = {p: len(r) for p, r in stream.results.items() if len(r) > 1}
    assert not missing, f"{len(missing)} ingest images without a result"
    assert not duplicated, duplicated
    assert all(r[0]["error_code"] == 0 for r in stream.results.values()), \
        [r[0]["error_detail"] for r in stream.results.values() if r[0]["error_code"]]
    after = snapshot(faulty, world)
    assert after == before
    assert not any(t in str(after) for t in TRANSITIONAL)
    timeout = 8.0
    slow = [c for c in load.calls if c[3] > timeout + 1.5 and c[1] != "DetectAnomalies"]
    assert not slow, f"calls that waited past the request timeout: {slow}"
    recovered_at = max(at for at, *_ in load.calls) - 1.0
    late = [c for c in load.calls if c[0] > recovered_at]
    assert late and all(ok for _, _, ok, _ in late), f"failing after recovery: {[c for c in late if not c[2]]}"
