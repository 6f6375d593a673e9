"""`loupe model train`: CreateModel, then follow the version until it is final and read its
evaluation back. UI-free: main.py renders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .connection import Connection, wait_until

FINAL = {"TRAINED", "TRAINING_FAILED"}


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


def wait_for_model(client: Any, project: str, version: str, *,
                   on_status: Callable[[dict], None] | None = None,
                   poll_interval: float = 1.0, timeout: float = 3600.0) -> dict:
    return wait_until(
        lambda: client.describe_model(ProjectName=project, ModelVersion=version)["ModelDescription"],
        FINAL, f"model {version}", on_status=on_status, poll_interval=poll_interval, timeout=timeout)


def evaluation(connection: Connection, project: str, version: str) -> dict:
    """The Loupe-native evaluation summary (image/pixel AUROC, threshold, artifact links)."""
    response = connection.signed_get(f"/loupe/v1/projects/{project}/models/{version}/evaluation")
    response.raise_for_status()
    return response.json()["data"]
