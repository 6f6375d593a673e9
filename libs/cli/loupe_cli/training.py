"""`loupe model train`: CreateModel, then follow the version until it is final and read its
evaluation back. UI-free: main.py renders."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from .connection import SERVICE_NAME, Connection

FINAL = {"TRAINED", "TRAINING_FAILED"}


class ModelWaitTimeout(Exception):
    pass


def parse_output(output: str) -> dict:
    """s3://bucket/prefix -> OutputConfig; default s3://loupe-output/<project>/."""
    if not output.startswith("s3://"):
        raise ValueError("--output must look like s3://bucket/prefix")
    bucket, _, prefix = output.removeprefix("s3://").partition("/")
    location: dict[str, str] = {"Bucket": bucket}
    if prefix:
        location["Prefix"] = prefix
    return {"S3Location": location}


def start_training(client: Any, project: str, output_config: dict, description: str | None = None) -> dict:
    kwargs: dict[str, Any] = {"ProjectName": project, "OutputConfig": output_config}
    if description:
        kwargs["Description"] = description
    return client.create_model(**kwargs)["ModelMetadata"]


def wait_for_model(client: Any, project: str, version: str, *, on_status: Callable[[dict], None] | None = None,
                   poll_interval: float = 1.0, timeout: float = 3600.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        desc = client.describe_model(ProjectName=project, ModelVersion=version)["ModelDescription"]
        if on_status:
            on_status(desc)
        if desc["Status"] in FINAL:
            return desc
        if time.monotonic() > deadline:
            raise ModelWaitTimeout(f"model {version} still {desc['Status']} after {timeout:.0f} s")
        time.sleep(poll_interval)


def evaluation(connection: Connection, project: str, version: str) -> dict:
    """The Loupe-native evaluation summary (image/pixel AUROC, threshold, artifact links)."""
    url = f"{connection.endpoint_url}/loupe/v1/projects/{project}/models/{version}/evaluation"
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(connection.credentials(), SERVICE_NAME, connection.region).add_auth(request)
    response = httpx.get(url, headers=dict(request.headers.items()), timeout=30)
    response.raise_for_status()
    return response.json()["data"]
