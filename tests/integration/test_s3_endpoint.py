"""s3:// references on an S3-compatible endpoint (LOUPE_S3_ENDPOINT_URL) instead of the local
bucket root: manifests, images and uploads. The endpoint is moto's standalone S3 server."""

from __future__ import annotations

import json

import boto3
import pytest

from helpers import make_client, png_bytes, signed_request, wait_dataset


@pytest.fixture(scope="module")
def s3_stack(tmp_path_factory, s3_server):
    from loupe_local.stack import Stack

    stack = Stack.on_free_ports(
        tmp_path_factory.mktemp("s3-stack"),
        services=("dataset",),
        extra_env={"LOUPE_S3_ENDPOINT_URL": s3_server, "LOUPE_S3_ACCESS_KEY_ID": "test",
                   "LOUPE_S3_SECRET_ACCESS_KEY": "test"},
    )
    with stack:
        yield stack


def test_manifest_images_and_uploads_on_the_endpoint(s3_server, s3_stack):
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    s3.create_bucket(Bucket="factory")
    s3.create_bucket(Bucket="loupe-uploads")
    lines = []
    for i in range(3):
        s3.put_object(Bucket="factory", Key=f"imgs/{i}.png", Body=png_bytes(seed=1000 + i))
        lines.append(json.dumps({"source-ref": f"s3://factory/imgs/{i}.png", "anomaly-label": i % 2}))
    lines.append(json.dumps({"source-ref": "s3://factory/imgs/missing.png", "anomaly-label": 0}))
    s3.put_object(Bucket="factory", Key="train.manifest", Body="\n".join(lines).encode())

    lookout = make_client("lookoutvision", s3_stack.endpoint_url)
    lookout.create_project(ProjectName="on-s3")
    lookout.create_dataset(ProjectName="on-s3", DatasetType="train", DatasetSource={
        "GroundTruthManifest": {"S3Object": {"Bucket": "factory", "Key": "train.manifest"}}})
    desc = wait_dataset(lookout, "on-s3")
    assert desc["Status"] == "CREATE_COMPLETE", desc
    assert desc["ImageStats"] == {"Total": 3, "Labeled": 3, "Normal": 2, "Anomaly": 1}
    assert "line 4:" in desc["StatusMessage"] and "not found" in desc["StatusMessage"]

    response = signed_request(s3_stack.endpoint_url, "POST", "/loupe/v1/projects/on-s3/images",
                              body=png_bytes(seed=1010), headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    ref = response.json()["data"]["source_ref"]
    key = ref.removeprefix("s3://loupe-uploads/")
    assert s3.get_object(Bucket="loupe-uploads", Key=key)["Body"].read() == png_bytes(seed=1010)
