"""The running platform: separate processes, health and readiness, and what a client sees when a
service does not answer."""

from __future__ import annotations

import time

import httpx
import pytest
from botocore.exceptions import ClientError

from helpers import make_client


def test_every_service_is_its_own_healthy_process(stack):
    names = ["gateway", "dataset", "training", "hosting", "inference", "human_loop"]
    pids = {name: stack.processes[name].pid for name in names}
    assert len(set(pids.values())) == len(names)
    for name in names:
        assert stack.processes[name].poll() is None, f"{name} exited"
        base = stack.health_url(name)
        assert httpx.get(base + "/health").status_code == 200, name
        # A group rebalance (a worker an earlier test stopped) makes /ready say 503 for a moment.
        deadline = time.monotonic() + 20
        while httpx.get(base + "/ready").status_code not in (200, 204):
            assert time.monotonic() < deadline, f"{name} is not ready"
            time.sleep(0.5)


@pytest.fixture(scope="module")
def gateway_alone(tmp_path_factory):
    """Broker and gateway, but no dataset service: nobody answers the dataset commands."""
    from loupe_local.stack import Stack

    stack = Stack.on_free_ports(
        tmp_path_factory.mktemp("alone"), services=(), extra_env={"LOUPE_REQUEST_TIMEOUT_SECONDS": "1"}
    )
    with stack:
        yield stack


def test_unanswered_command_is_a_retryable_500(gateway_alone):
    client = make_client("lookoutvision", gateway_alone.endpoint_url)
    started = time.monotonic()
    with pytest.raises(ClientError) as excinfo:
        client.describe_project(ProjectName="anything")
    elapsed = time.monotonic() - started
    response = excinfo.value.response
    assert response["Error"]["Code"] == "InternalServerException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "1"
    assert "client token" in response["Error"]["Message"]
    assert 0.9 < elapsed < 5


def test_gateway_readiness_reflects_kafka(gateway_alone):
    assert httpx.get(gateway_alone.endpoint_url + "/ready").status_code == 200


def test_a_live_consumer_is_never_rewound(gateway_alone):
    """The topic keeper rewinds a consumer only when its log started again (a broker restart):
    on a topic written and read all the time, the check never fires."""
    import asyncio
    import uuid

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from loupe_common.kafka import rewind_if_ahead

    topic = f"test.rewind.{uuid.uuid4().hex[:6]}"

    async def run() -> list:
        from loupe_common.kafka import ensure_topics
        from loupe_common.settings import Settings

        await ensure_topics(Settings(_env_file=None, kafka_bootstrap=gateway_alone.kafka_bootstrap), [(topic, 1)])
        producer = AIOKafkaProducer(bootstrap_servers=gateway_alone.kafka_bootstrap, linger_ms=0)
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=gateway_alone.kafka_bootstrap, fetch_max_wait_ms=5)
        await producer.start()
        await consumer.start()
        stop = asyncio.Event()

        async def write() -> None:
            while not stop.is_set():
                await producer.send_and_wait(topic, b"x")

        async def read() -> None:
            while not stop.is_set():
                await consumer.getmany(timeout_ms=20)

        tasks = [asyncio.create_task(write()), asyncio.create_task(read())]
        rewound = []
        try:
            for _ in range(300):
                rewound += await rewind_if_ahead(consumer)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            await consumer.stop()
            await producer.stop()
        return rewound

    assert asyncio.run(run()) == []


def test_every_process_has_metrics_and_logs_each_request_as_json(stack):
    """Prometheus /metrics on every process, and one JSON log line per request with the request id
    the client saw (gateway) and the same id on the service that handled the command."""
    import json

    lookout = make_client("lookoutvision", stack.endpoint_url)
    response = lookout.list_projects()
    request_id = response["ResponseMetadata"]["RequestId"]
    wanted = {
        "gateway": ['loupe_http_request_seconds_count{method="GET",route="/2020-11-20/projects",status="200"}'],
        "dataset": ['loupe_handler_seconds_count{operation="ListProjects",outcome="ok",service="dataset"}',
                    'loupe_kafka_consumer_lag{group="loupe-dataset",topic="loupe.dataset.commands"}'],
        "training": ["loupe_kafka_consumer_lag"],
        "hosting": ["loupe_kafka_consumer_lag"],
        "human_loop": ["loupe_kafka_consumer_lag"],
        "inference": ["loupe_models_loaded", "loupe_kafka_consumer_lag"],
    }
    deadline = time.monotonic() + 10  # the lag gauges are refreshed every 2 s
    for name, series in wanted.items():
        while True:
            text = httpx.get(stack.health_url(name) + "/metrics").text
            missing = [s for s in series if s not in text]
            if not missing:
                break
            assert time.monotonic() < deadline, (name, missing)
            time.sleep(0.3)

    def json_lines(name: str) -> list[dict]:
        lines = (stack.logs_dir / f"{name}.log").read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    deadline = time.monotonic() + 5
    while not ([r for r in json_lines("gateway") if r.get("request_id") == request_id]
               and [r for r in json_lines("dataset") if r.get("request_id") == request_id]):
        assert time.monotonic() < deadline, "no JSON line for the request"
        time.sleep(0.2)
    [http] = [r for r in json_lines("gateway") if r.get("request_id") == request_id]
    assert http["route"] == "/2020-11-20/projects" and http["status"] == 200 and http["service"] == "gateway"
    [handled] = [r for r in json_lines("dataset") if r.get("request_id") == request_id]
    assert handled["operation"] == "ListProjects" and handled["outcome"] == "ok"
