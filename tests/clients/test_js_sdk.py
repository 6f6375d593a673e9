"""The unmodified AWS SDK for JavaScript v3 (@aws-sdk/client-lookoutvision, pinned in
tests/clients/js/package-lock.json) against the real stack. It is stricter than boto3: ISO
timestamps would parse as 1970, and it signs with lowercase header names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import DEV_KEY, DEV_SECRET

JS_DIR = Path(__file__).parent / "js"


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "@aws-sdk" / "client-lookoutvision").is_dir():
        pytest.skip("node or the JS SDK is missing: `make test` installs it with npm ci")
    return node


def test_js_sdk_control_plane(stack, node, project_name):
    env = {**os.environ, "LOUPE_ENDPOINT_URL": stack.endpoint_url, "PROJECT": project_name,
           "AWS_ACCESS_KEY_ID": DEV_KEY, "AWS_SECRET_ACCESS_KEY": DEV_SECRET}
    run = subprocess.run([node, "lookout.mjs"], cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["createdIsDate"] and report["createdYear"] >= 2026 and report["lastUpdatedYear"] >= 2026
    assert report["arn"].endswith(f":project/{project_name}")
    assert report["listed"]
    assert report["datasetStatus"] == "CREATE_COMPLETE"
    assert report["imageStats"] == {"Total": 0, "Labeled": 0, "Normal": 0, "Anomaly": 0}
    assert report["tags"] == [{"Key": "line", "Value": "A/7"}]
    assert report["notFound"]["name"] == "ResourceNotFoundException" and report["notFound"]["status"] == 404
    assert report["notFound"]["resourceType"] == "PROJECT"
    assert report["invalid"]["name"] == "ValidationException" and "projectName" in report["invalid"]["message"]
    assert report["conflict"]["name"] == "ConflictException" and report["conflict"]["status"] == 409


def test_js_sdk_a2i_runtime(stack, node):
    """@aws-sdk/client-sagemaker-a2i-runtime: ISO timestamps become Dates, paginator, stop/delete, errors."""
    import uuid

    from helpers import signed_request

    if not (JS_DIR / "node_modules" / "@aws-sdk" / "client-sagemaker-a2i-runtime").is_dir():
        pytest.skip("the A2I runtime JS SDK is missing: `make test` installs it with npm ci")
    flow_name, prefix = f"js-flow-{uuid.uuid4().hex[:10]}", f"js-{uuid.uuid4().hex[:10]}"
    spec = {"FlowDefinitionName": flow_name, "HumanLoopConfig": {"TaskTitle": "Inspect", "TaskDescription": "Defect?"}}
    created = signed_request(stack.endpoint_url, "POST", "/loupe/v1/flow-definitions", body=json.dumps(spec).encode(),
                             headers={"Content-Type": "application/json"})
    assert created.status_code == 200, created.text
    flow = created.json()["data"]["FlowDefinitionArn"]
    env = {**os.environ, "LOUPE_ENDPOINT_URL": stack.endpoint_url, "FLOW_ARN": flow, "PREFIX": prefix,
           "AWS_ACCESS_KEY_ID": DEV_KEY, "AWS_SECRET_ACCESS_KEY": DEV_SECRET}
    run = subprocess.run([node, "a2i.mjs"], cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    loops = report["loops"]
    assert report["arns"] == [f"arn:aws:sagemaker:us-east-1:123456789012:human-loop/{n}" for n in loops]
    assert report["again"] == report["arns"][0]
    assert report["createdIsDate"] and report["createdYear"] >= 2026
    assert report["status"] == "InProgress" and report["flowArn"] == flow and not report["hasFailure"]
    assert report["descending"] == {"names": loops[::-1], "pages": 3}
    assert report["ascending"] == {"names": loops, "pages": 3}
    assert report["defaultOrder"] == loops[::-1]
    assert report["after"] == loops[1:]
    assert report["stopOutput"] == [] and report["stoppedStatus"] == "Stopped" and report["deleteStatus"] == 200
    assert report["afterDelete"]["name"] == "ResourceNotFoundException" and report["afterDelete"]["status"] == 404
    assert report["notFound"]["name"] == "ResourceNotFoundException" and report["notFound"]["status"] == 404
    assert report["invalid"]["name"] == "ValidationException" and report["invalid"]["status"] == 400
    assert report["conflict"]["name"] == "ConflictException" and report["conflict"]["status"] == 409
    assert report["deleteActive"]["name"] == "ValidationException" and report["deleteActive"]["status"] == 400


def test_js_sdk_model_packaging(stack, lookout, node, project_name):
    """StartModelPackagingJob, DescribeModelPackagingJob (timestamps as Dates) and the
    ListModelPackagingJobs paginator, with a Jetson target, from the unmodified JS SDK."""
    from helpers import train_model

    train_model(lookout, stack.data_dir / "s3", project_name)
    env = {**os.environ, "LOUPE_ENDPOINT_URL": stack.endpoint_url, "PROJECT": project_name,
           "AWS_ACCESS_KEY_ID": DEV_KEY, "AWS_SECRET_ACCESS_KEY": DEV_SECRET}
    run = subprocess.run([node, "packaging.mjs"], cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["jobName"] == "from-js" and report["status"] == "SUCCEEDED"
    assert report["createdIsDate"] and report["updatedIsDate"] and report["createdYear"] >= 2026
    assert report["output"]["Greengrass"]["ComponentVersion"] == "3.0.0" and report["target"] == "jetson_xavier"
    assert report["listed"] == ["from-js"]
    assert report["invalid"]["name"] == "ValidationException" and report["invalid"]["status"] == 400
    assert report["notFound"]["name"] == "ResourceNotFoundException" and report["notFound"]["status"] == 404
    recipe = json.loads((stack.data_dir / "s3" / "edge-bkt" / "js" / "loupe-js" / "3.0.0" / "recipe.json").read_text())
    assert recipe["Manifests"][0]["Platform"] == {"os": "linux", "architecture": "aarch64"}  # a Jetson Xavier
