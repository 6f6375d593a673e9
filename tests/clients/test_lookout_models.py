"""CreateModel / DescribeModel / ListModels / DeleteModel through unmodified boto3, training for
real on the training service (EfficientNet-Lite0 + PatchCore)."""

from __future__ import annotations

import io
import json
import time

import pytest
from botocore.exceptions import ClientError
from PIL import Image

from helpers import OUTPUT, code_of, fill, pattern_png, put_object, signed_request, wait_dataset, wait_model

@pytest.fixture(scope="module")
def trained(lookout, stack):
    """One project with train + test datasets and a trained model version 1."""
    project = "trained-model"
    lookout.create_project(ProjectName=project)
    root = stack.data_dir / "s3"
    fill(lookout, root, project, "train", normal=14, anomalous=0, seed=0)
    fill(lookout, root, project, "test", normal=6, anomalous=6, seed=100)
    created = lookout.create_model(ProjectName=project, OutputConfig=OUTPUT, Description="first",
                                   Tags=[{"Key": "line", "Value": "7"}])
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert created["ModelMetadata"]["Status"] == "TRAINING" and created["ModelMetadata"]["ModelVersion"] == "1"
    return project, wait_model(lookout, project)


def test_create_model_trains_and_reports_performance(trained):
    project, desc = trained
    assert desc["Status"] == "TRAINED", desc
    perf = desc["Performance"]
    assert set(perf) == {"F1Score", "Precision", "Recall"}
    assert perf["F1Score"] >= 0.8, perf  # defects here are obvious: a bright scratch and a dark blob
    assert desc["EvaluationEndTimestamp"] >= desc["CreationTimestamp"]
    assert desc["EvaluationManifest"]["Bucket"] == "loupe-output"
    assert desc["EvaluationResult"]["Key"] == f"evaluations/{project}/1/evaluation-result.json"
    assert desc["OutputConfig"]["S3Location"] == OUTPUT["S3Location"]
    assert desc["ModelArn"].endswith(f":model/{project}/1") and desc["Description"] == "first"
    assert "test dataset" in desc["StatusMessage"]


def test_evaluation_files_are_written_to_the_output_location(trained, stack):
    project, desc = trained
    root = stack.data_dir / "s3" / "loupe-output"
    manifest = (root / desc["EvaluationManifest"]["Key"]).read_text().splitlines()
    assert len(manifest) == 12
    first = json.loads(manifest[0])
    assert set(first) >= {"source-ref", "anomaly-label", "prediction", "score", "confidence"}
    assert 0.0 <= first["confidence"] <= 1.0
    result = json.loads((root / desc["EvaluationResult"]["Key"]).read_text())
    assert result["F1Score"] == pytest.approx(desc["Performance"]["F1Score"], abs=1e-6)
    assert result["ImageAUROC"] >= 0.9 and result["TestImages"] == {"normal": 6, "anomaly": 6}


def test_latest_and_native_evaluation_routes(trained, lookout, stack):
    project, desc = trained
    latest = lookout.describe_model(ProjectName=project, ModelVersion="latest")["ModelDescription"]
    assert latest["ModelVersion"] == "1"
    summary = signed_request(stack.endpoint_url, "GET", f"/loupe/v1/projects/{project}/models/latest/evaluation")
    assert summary.status_code == 200, summary.text
    data = summary.json()["data"]
    assert data["model_version"] == "1" and data["ImageAUROC"] >= 0.9
    report = signed_request(stack.endpoint_url, "GET", data["artifacts"]["report.html"])
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "<svg" in report.text and "Precision" in report.text
    model = signed_request(stack.endpoint_url, "GET", data["artifacts"]["model.onnx"])
    assert model.status_code == 200 and len(model.content) > 100_000
    sidecar = signed_request(stack.endpoint_url, "GET", data["artifacts"]["model.json"]).json()
    assert sidecar["format"] == "loupe-patchcore-v2" and sidecar["threshold"] > 0
    missing = signed_request(stack.endpoint_url, "GET", f"/loupe/v1/projects/{project}/models/1/artifacts/secret.txt")
    assert missing.status_code == 404 and missing.json()["error_detail"]["code"] == "ERROR_FILE_NOT_FOUND"


def test_model_tags(trained, lookout):
    project, desc = trained
    assert lookout.list_tags_for_resource(ResourceArn=desc["ModelArn"])["Tags"] == [{"Key": "line", "Value": "7"}]
    lookout.tag_resource(ResourceArn=desc["ModelArn"], Tags=[{"Key": "owner", "Value": "qa"}])
    lookout.untag_resource(ResourceArn=desc["ModelArn"], TagKeys=["line"])
    assert lookout.list_tags_for_resource(ResourceArn=desc["ModelArn"])["Tags"] == [{"Key": "owner", "Value": "qa"}]


def test_list_models_pages_and_delete(lookout, stack, project_name):
    lookout.create_project(ProjectName=project_name)
    fill(lookout, stack.data_dir / "s3", project_name, "train", normal=12, anomalous=0, seed=1000)
    for _ in range(3):
        lookout.create_model(ProjectName=project_name, OutputConfig=OUTPUT)
    pages = list(lookout.get_paginator("list_models").paginate(ProjectName=project_name, PaginationConfig={"PageSize": 1}))
    assert [m["ModelVersion"] for p in pages for m in p["Models"]] == ["1", "2", "3"]
    assert len(pages) == 3
    for version in ("1", "2", "3"):
        wait_model(lookout, project_name, version)
    # Normal-only data (a split of 12 normal images): trained, with metrics about false alarms only.
    desc = lookout.describe_model(ProjectName=project_name, ModelVersion="3")["ModelDescription"]
    assert desc["Status"] == "TRAINED", desc
    with pytest.raises(ClientError) as excinfo:
        lookout.delete_project(ProjectName=project_name)
    assert code_of(excinfo) == ("ConflictException", 409)  # datasets still exist
    deleted = lookout.delete_model(ProjectName=project_name, ModelVersion="2")
    assert deleted["ModelArn"].endswith("/2") and deleted["ResponseMetadata"]["HTTPStatusCode"] == 202
    with pytest.raises(ClientError) as excinfo:
        lookout.describe_model(ProjectName=project_name, ModelVersion="2")
    assert code_of(excinfo) == ("ResourceNotFoundException", 404)
    assert [m["ModelVersion"] for m in lookout.list_models(ProjectName=project_name)["Models"]] == ["1", "3"]
    # The dataset service learnt about the models from events: the project cannot go yet.
    lookout.delete_dataset(ProjectName=project_name, DatasetType="train")
    deadline = time.monotonic() + 30
    while lookout.describe_project(ProjectName=project_name)["ProjectDescription"]["Datasets"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with pytest.raises(ClientError) as excinfo:
        lookout.delete_project(ProjectName=project_name)
    assert code_of(excinfo) == ("ConflictException", 409)
    assert "model versions" in excinfo.value.response["Error"]["Message"]
    for version in ("1", "3"):
        lookout.delete_model(ProjectName=project_name, ModelVersion=version)
    deadline = time.monotonic() + 10
    while True:  # the deletion events reach the dataset service asynchronously
        try:
            lookout.delete_project(ProjectName=project_name)
            break
        except ClientError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_create_model_error_paths(lookout, stack, project_name):
    with pytest.raises(ClientError) as excinfo:
        lookout.create_model(ProjectName=project_name, OutputConfig=OUTPUT)
    assert code_of(excinfo) == ("ResourceNotFoundException", 404)
    lookout.create_project(ProjectName=project_name)
    with pytest.raises(ClientError) as excinfo:
        lookout.create_model(ProjectName=project_name, OutputConfig=OUTPUT)
    assert code_of(excinfo) == ("ValidationException", 400)
    assert "no train dataset" in excinfo.value.response["Error"]["Message"]
    fill(lookout, stack.data_dir / "s3", project_name, "train", normal=9, anomalous=2, seed=2000)
    with pytest.raises(ClientError) as excinfo:
        lookout.create_model(ProjectName=project_name, OutputConfig=OUTPUT)
    assert code_of(excinfo) == ("ValidationException", 400)
    assert "at least 12" in excinfo.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as excinfo:
        lookout.create_model(ProjectName=project_name, OutputConfig={"S3Location": {"Bucket": "bad/bucket"}})
    assert code_of(excinfo) == ("ValidationException", 400)
    with pytest.raises(ClientError) as excinfo:
        lookout.create_model(ProjectName=project_name, OutputConfig=OUTPUT, Description="not allowed!")
    assert code_of(excinfo) == ("ValidationException", 400)
    for bad in ("0", "v1", "01"):
        with pytest.raises(ClientError) as excinfo:
            lookout.describe_model(ProjectName=project_name, ModelVersion=bad)
        assert code_of(excinfo) == ("ValidationException", 400), bad
    with pytest.raises(ClientError) as excinfo:
        lookout.describe_model(ProjectName=project_name, ModelVersion="latest")
    assert code_of(excinfo) == ("ResourceNotFoundException", 404)
    assert excinfo.value.response["ResourceType"] == "MODEL"


def test_create_model_is_idempotent_with_a_client_token(lookout, stack, project_name):
    lookout.create_project(ProjectName=project_name)
    fill(lookout, stack.data_dir / "s3", project_name, "train", normal=12, anomalous=0, seed=3000)
    first = lookout.create_model(ProjectName=project_name, OutputConfig=OUTPUT, ClientToken="train-once")
    again = lookout.create_model(ProjectName=project_name, OutputConfig=OUTPUT, ClientToken="train-once")
    assert again["ModelMetadata"]["ModelVersion"] == first["ModelMetadata"]["ModelVersion"] == "1"
    assert len(lookout.list_models(ProjectName=project_name)["Models"]) == 1
    with pytest.raises(ClientError) as excinfo:
        lookout.create_model(ProjectName=project_name, OutputConfig=OUTPUT, ClientToken="train-once", Description="x")
    assert code_of(excinfo) == ("ConflictException", 409)
    assert wait_model(lookout, project_name)["Status"] == "TRAINED"


def test_cli_model_train_wait(trained, stack, monkeypatch):
    """`loupe model train --wait` trains a second version and prints its metrics."""
    from typer.testing import CliRunner

    from loupe_cli.main import app

    project, _ = trained
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "LOUPEDEVACCESSKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "loupe-dev-secret-key")
    result = CliRunner().invoke(app, ["model", "train", "--project", project, "--wait", "--description", "cli",
                                      "--endpoint-url", stack.endpoint_url], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Model version 2" in result.output and "TRAINED" in result.output
    for metric in ("F1Score", "Precision", "Recall", "ImageAUROC"):
        assert metric in result.output
    assert f"/loupe/v1/projects/{project}/models/2/artifacts/report.html" in result.output
    bad = CliRunner().invoke(app, ["model", "train", "--project", project, "--output", "not-s3",
                                   "--endpoint-url", stack.endpoint_url])
    assert bad.exit_code == 2


def test_images_of_different_sizes_train(lookout, stack, project_name):
    lookout.create_project(ProjectName=project_name)
    root = stack.data_dir / "s3"
    sizes = [(160, 160), (240, 180), (320, 320), (200, 260)]
    lines = []
    for i in range(12):
        w, h = sizes[i % len(sizes)]
        image = Image.open(io.BytesIO(pattern_png(4000 + i, size=320))).resize((w, h))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        lines.append(json.dumps({"source-ref": put_object(root, "models-bkt", f"{project_name}/{i}.png", buffer.getvalue()),
                                 "anomaly-label": 0}))
    lookout.create_dataset(ProjectName=project_name, DatasetType="train")
    lookout.update_dataset_entries(ProjectName=project_name, DatasetType="train", Changes="\n".join(lines).encode())
    assert wait_dataset(lookout, project_name)["Status"] == "UPDATE_COMPLETE"
    lookout.create_model(ProjectName=project_name, OutputConfig=OUTPUT)
    assert wait_model(lookout, project_name)["Status"] == "TRAINED"
