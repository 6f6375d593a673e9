"""Shared fixtures. Integration and client tests run against the real system: a Tansu broker and
every service as its own process (the same Stack `make run` uses), on free ports."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import make_client

OTHER_REGION = "ca-central-1"  # a region the test stack accepts signatures for (LOUPE_SIGNING_REGIONS)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator["Stack"]:  # noqa: F821
    from loupe_local.stack import Stack

    data_dir = tmp_path_factory.mktemp("loupe-data")
    s = Stack.on_free_ports(data_dir, extra_env={"LOUPE_REQUEST_TIMEOUT_SECONDS": "20",
                                                         "LOUPE_AUTOSCALE_DOWN_AFTER_SECONDS": "4",
                                                         "LOUPE_SIGNING_REGIONS": OTHER_REGION})
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def lookout(stack):
    return make_client("lookoutvision", stack.endpoint_url)


@pytest.fixture
def project_name() -> str:
    return f"p-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def bucket_root(stack) -> Path:
    root = stack.data_dir / "s3"
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="module")
def s3_server():
    """moto's standalone S3 server: an S3-compatible endpoint for LOUPE_S3_ENDPOINT_URL."""
    from moto.server import ThreadedMotoServer

    from loupe_local.processes import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
