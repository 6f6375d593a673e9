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
