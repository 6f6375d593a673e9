"""Faults against the real local stack (a stack of this module's own: these tests kill its parts).

Each service is killed with SIGKILL under mixed load (control-plane calls, DetectAnomalies, images
on the ingest topic) and started again as `make run`'s supervisor would. Afterwards every
project, dataset, model, flow definition, reviewer and human loop is as it was, the hosted model
answers, no status is left in a transitional state, and every image sent on the ingest topic has
exactly one result. Recovery times are printed (run with -s); the longer fault run with figures is
tests/benchmarks/bench_faults.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from fault_tools import (
    PROJECT,
    SERVICES,
    TRANSITIONAL,
    Load,
    World,
    build_world,
    partition_counts,
    readiness,
    snapshot,
    wait_until,
)
from helpers import IngestStream as Stream
from helpers import ingest_headers, pattern_png, signed_request

RECOVERY_SECONDS = 30.0
GRACE_SECONDS = 12  # the reply-topic janitor's (default 60 s)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory) -> Iterator:
    from loupe_local.stack import Stack

    stack = Stack.on_free_ports(tmp_path_factory.mktemp("faults"),
                                extra_env={"LOUPE_REQUEST_TIMEOUT_SECONDS": "8",
                                           "LOUPE_REPLY_TOPIC_GRACE_SECONDS": str(GRACE_SECONDS)})
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def world(faulty) -> World:
    return build_world(faulty)


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


def test_a_gateway_killed_outright_leaves_no_reply_topic(faulty, world):
    """A gateway replica without a stable name (a Kubernetes pod) killed with SIGKILL cannot delete
    its reply topic: the hosting service's janitor does, once no process announced it for the
    grace period, and leaves the living processes' reply topics alone."""
    from loupe_local.processes import free_port, python_module, spawn

    def replies() -> set[str]:
        return {t for t in asyncio.run(partition_counts(faulty.kafka_bootstrap)) if t.startswith("loupe.replies.")}

    living = replies()
    env = {k: v for k, v in faulty.env().items() if k != "LOUPE_MEMBER_NAME"}
    env["LOUPE_GATEWAY_PORT"] = str(free_port())
    replica = spawn(python_module("loupe_gateway"), env=env, log_file=faulty.logs_dir / "gateway-replica.log")
    try:
        wait_until(lambda: replies() - living, 60)
        own = replies() - living
        assert len(own) == 1 and next(iter(own)).startswith("loupe.replies.gateway-"), own
    finally:
        replica.kill()
        replica.wait(10)
    gone = wait_until(lambda: not (replies() & own), GRACE_SECONDS * 3)
    print(f"\nthe killed replica's reply topic was deleted {gone:.1f} s after the kill")
    assert living <= replies(), "a living process lost its reply topic"
    assert snapshot(faulty, world)["model"][0] == "HOSTED"


def test_broker_down_is_an_error_and_back_is_business_as_usual(faulty, world):
    """The local broker killed: every call answers within the request timeout (+1 s) with a
    retryable error and every /ready says why. Restarted as `make run`'s supervisor restarts it
    (empty: its storage is memory; the catalogue created, the services started again on their
    stored state): within 30 s the API, detection and the ingest topic work as before, with the
    state unchanged and every topic at its catalogue partition count."""
    from loupe_common.settings import Settings
    from loupe_common.topics import CATALOGUE, model_request_topic

    before = snapshot(faulty, world)
    lookout = world.lookout
    broker = faulty.processes["kafka"]
    broker.kill()
    broker.wait(10)
    timeout = 8.0
    calls = {
        "ListProjects": lambda: lookout.list_projects(),
        "DescribeModel": lambda: lookout.describe_model(ProjectName=PROJECT, ModelVersion="1"),
        "DetectAnomalies": lambda: lookout.detect_anomalies(ProjectName=PROJECT, ModelVersion="1",
                                                            Body=pattern_png(9300), ContentType="image/png"),
        "DescribeHumanLoop": lambda: world.a2i.describe_human_loop(HumanLoopName=world.loop),
    }
    for name, call in calls.items():
        started = time.monotonic()
        with pytest.raises(ClientError) as excinfo:
            call()
        took = time.monotonic() - started
        response = excinfo.value.response
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 500, (name, response)
        assert response["ResponseMetadata"]["HTTPHeaders"].get("retry-after"), name
        assert took <= timeout + 1.0, f"{name} took {took:.1f} s with the broker down"
        print(f"\nbroker down: {name} answered {response['Error']['Code']} in {took:.1f} s")
    started = time.monotonic()
    native_call = signed_request(faulty.endpoint_url, "GET", "/loupe/v1/flow-definitions")
    assert time.monotonic() - started <= timeout + 1.0
    assert native_call.status_code >= 500 and native_call.json()["error_code"] >= 500, native_call.text
    wait_until(lambda: all(v == (503, "not ready: broker") for v in readiness(faulty).values()), 15)

    back = time.monotonic()
    faulty.restart("kafka")
    wait_until(lambda: all(code == 200 for code, _ in readiness(faulty).values()), 30)
    ready_after = time.monotonic() - back
    recovery = wait_until(lambda: snapshot(faulty, world) == before and lookout.detect_anomalies(
        ProjectName=PROJECT, ModelVersion="1", Body=pattern_png(9301), ContentType="image/png"), 30)
    print(f"broker back: every service ready after {ready_after:.1f} s, state and detection after "
          f"{time.monotonic() - back:.1f} s")

    settings = Settings(_env_file=None)
    counts = asyncio.run(partition_counts(faulty.kafka_bootstrap))
    for spec in CATALOGUE:
        wanted = settings.topic_partitions if spec.partitioned else 1
        assert counts.get(spec.name) == wanted, (spec.name, counts.get(spec.name), wanted)
    assert counts[model_request_topic(PROJECT, "1")] == settings.topic_partitions, counts
    assert all(n == 1 for t, n in counts.items() if t.startswith("loupe.replies.")), counts

    async def ingest_again() -> Stream:
        async with Stream(faulty.kafka_bootstrap) as stream:
            for i in range(10):
                await stream.send(f"after-broker-{i}", pattern_png(9400 + i), ingest_headers(PROJECT, f"after-broker-{i}"))
            await stream.collect(timeout=60)
            return stream

    stream = asyncio.run(ingest_again())
    assert set(stream.results) == set(stream.sent) and all(len(r) == 1 for r in stream.results.values())
    assert all(r[0]["error_code"] == 0 for r in stream.results.values())
    assert recovery < 30


def test_make_run_stopped_and_started_again_keeps_everything(faulty, world):
    """Ctrl-C and `make run` again (same data directory, same ports): projects, datasets, models,
    the hosted model (its hosting intent), flows, reviewers and loops are all back, and the model
    answers again, on a broker that starts empty."""
    before = snapshot(faulty, world)
    faulty.stop()
    started = time.monotonic()
    faulty.start()
    ready = time.monotonic() - started
    back = wait_until(lambda: snapshot(faulty, world) == before and world.lookout.detect_anomalies(
        ProjectName=PROJECT, ModelVersion="1", Body=pattern_png(9500), ContentType="image/png"), 30)
    print(f"\nstop/start: ready after {ready:.1f} s, state and detection {back:.1f} s later")
    assert (faulty.data_dir / "state" / "dataset.sqlite3").exists()
