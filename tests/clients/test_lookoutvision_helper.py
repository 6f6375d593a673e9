"""AWS's `lookoutvision` helper library (PyPI 0.1.10), unmodified, against Loupe with images on an
S3-compatible endpoint (moto's server), as a migrating user runs it: its Manifest class writes the
manifests (`"auto-label": 1` for normal images), its LookoutForVision class creates the project
and datasets, trains, hosts, batch-predicts from S3 into S3 (json.dumps of every result) and stops
the model. Only the endpoint URLs change, through boto3's standard environment variables."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from helpers import DEV_KEY, DEV_SECRET, pattern_png

BUCKET, PREFIX, OUT = "lv-helper", "helper/", "lv-helper-out"
PROJECT = "helper-project"


@pytest.fixture(scope="module")
def helper_stack(tmp_path_factory, s3_server):
    from loupe_local.stack import Stack

    stack = Stack.on_free_ports(tmp_path_factory.mktemp("helper-stack"), extra_env={
        "LOUPE_S3_ENDPOINT_URL": s3_server, "LOUPE_S3_ACCESS_KEY_ID": "test", "LOUPE_S3_SECRET_ACCESS_KEY": "test",
        "LOUPE_TAGGING_ENABLED": "false"})
    with stack:
        yield stack


@pytest.fixture
def aws_env(monkeypatch, helper_stack, s3_server):
    """What a user changes: the endpoints (boto3's AWS_ENDPOINT_URL_<SERVICE>) and the keys."""
    for name, value in {"AWS_ENDPOINT_URL_LOOKOUTVISION": helper_stack.endpoint_url, "AWS_ENDPOINT_URL_S3": s3_server,
                        "AWS_ACCESS_KEY_ID": DEV_KEY, "AWS_SECRET_ACCESS_KEY": DEV_SECRET,
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def wait_for(describe, wanted: set[str], timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    while (status := describe()) not in wanted:
        assert time.monotonic() < deadline, status
        time.sleep(1)
    return status


def test_the_helper_library_from_manifests_to_batch_predictions(aws_env):
    from lookoutvision.lookoutvision import LookoutForVision
    from lookoutvision.manifest import Manifest

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket=OUT)
    layout = {"training": {"normal": 20, "anomaly": 10}, "validation": {"normal": 6, "anomaly": 6}}
    seed = 2000
    for dataset, folders in layout.items():
        for folder, count in folders.items():
            for i in range(count):
                seed += 1
                s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}{dataset}/{folder}/{i}.png",
                              Body=pattern_png(seed, defect=folder == "anomaly"))
    for i in range(4):
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}predict/{i}.png", Body=pattern_png(2900 + i, defect=i % 2 == 1))

    # The helper writes "auto-label": 1 for normal images and 0 for anomalies: class-name decides.
    manifests = Manifest(BUCKET, PREFIX, datasets=["training", "validation"]).push_manifests()
    assert set(manifests) == {"training", "validation"}, manifests
    lv = LookoutForVision(PROJECT)
    lv.create_project()
    datasets = lv.create_datasets(manifests, wait=True)
    assert {d["Status"] for d in datasets.values()} == {"CREATE_COMPLETE"}, datasets
    stats = lv.lv.describe_dataset(ProjectName=PROJECT, DatasetType="train")["DatasetDescription"]["ImageStats"]
    assert stats == {"Total": 30, "Labeled": 30, "Normal": 20, "Anomaly": 10}

    fitted = lv.fit(output_bucket=OUT, model_prefix="models/", wait=False)
    assert fitted["status"] == "Success!", fitted
    describe = lambda: lv.lv.describe_model(ProjectName=PROJECT, ModelVersion="1")["ModelDescription"]["Status"]  # noqa: E731
    assert wait_for(describe, {"TRAINED", "TRAINING_FAILED"}) == "TRAINED"
    lv.deploy(min_inf_units=1, wait=False)
    assert wait_for(describe, {"HOSTED", "HOSTING_FAILED"}) == "HOSTED"

    # batch_predict json.dumps every DetectAnomalyResult into S3: a classification model's result
    # is plain JSON (a bytes AnomalyMask made it write nothing).
    out = lv.batch_predict(input_bucket=BUCKET, input_prefix=f"{PREFIX}predict/", output_bucket=OUT,
                           output_prefix="predictions/", content_type="image/png")
    assert out["status"] == "Success!", out
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=OUT, Prefix="predictions/").get("Contents", []))
    assert keys == [f"predictions/{i}.png.json" for i in range(4)], keys
    results = [json.loads(s3.get_object(Bucket=OUT, Key=k)["Body"].read()) for k in keys]
    assert [r["IsAnomalous"] for r in results] == [False, True, False, True], results
    assert all(set(r) == {"Source", "IsAnomalous", "Confidence"} for r in results)

    lv.stop_model(wait=False)
    assert wait_for(describe, {"TRAINED"}) == "TRAINED"
