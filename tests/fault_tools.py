"""What the fault tests and the fault benchmark share: the world they build (a hosted model, a
flow definition, a reviewer, an open human loop), the snapshot of what a user can see, and the
mixed load whose outages they measure."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx

from helpers import make_client, pattern_png, signed_request, train_and_host

PROJECT = "faults"
SERVICES = ["dataset", "training", "hosting", "human_loop", "inference", "gateway"]
TRANSITIONAL = ("IN_PROGRESS", "TRAINING", "STARTING_HOSTING", "STOPPING_HOSTING")


def native(stack, method: str, path: str, body: dict | None = None) -> dict:
    r = signed_request(stack.endpoint_url, method, path, body=json.dumps(body).encode() if body else b"",
                       headers={"Content-Type": "application/json"} if body else {})
    assert r.status_code == 200, r.text
    return r.json()["data"]


@dataclass
class World:
    lookout: object
    a2i: object
    flow: str
    loop: str


def build_world(stack) -> World:
    lookout = make_client("lookoutvision", stack.endpoint_url)
    a2i = make_client("sagemaker-a2i-runtime", stack.endpoint_url)
    train_and_host(lookout, stack.data_dir / "s3", PROJECT, test_normal=4, test_anomalous=4)
    flow = f"faults-{uuid.uuid4().hex[:6]}"
    created = native(stack, "POST", "/loupe/v1/flow-definitions", {
        "FlowDefinitionName": flow, "HumanLoopConfig": {"TaskTitle": "T", "TaskDescription": "D", "TaskCount": 1}})
    native(stack, "POST", "/loupe/v1/reviewers", {"username": "fault-reviewer", "password": "review-pass-123"})
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


def readiness(stack) -> dict[str, tuple[int, str]]:
    out = {}
    for name in [n for n in stack.processes if n != "kafka"]:
        r = httpx.get(stack.health_url(name) + "/ready", timeout=10)
        out[name] = (r.status_code, r.json()["status"])
    return out


async def partition_counts(bootstrap: str) -> dict[str, int]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = await admin.list_topics()
        return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(names)}
    finally:
        await admin.close()
