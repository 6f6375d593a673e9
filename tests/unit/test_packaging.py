"""Model packaging's pure parts: job names, the Greengrass recipe and the bundle's manifest."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

from loupe_training.packaging import bundle_manifest, default_job_name, greengrass_recipe


def job(**greengrass) -> dict:
    return {"project_name": "tiles", "model_version": "3", "configuration": {"Greengrass": {
        "ComponentName": "loupe-tiles", "ComponentVersion": "1.0.0",
        "S3OutputLocation": {"Bucket": "edge"}, **greengrass}}}


def test_generated_job_names_fit_the_api_pattern():
    name = default_job_name("line_7.tiles", "3", datetime(2026, 12, 7, 6, 30, 5, tzinfo=UTC))
    assert name == "line-7-tiles-3-20261207063005"


def test_the_recipe_runs_the_bundle_on_the_targets_platform_and_names_its_digest():
    digest = hashlib.sha256(b"zip").hexdigest()
    recipe = greengrass_recipe(job(TargetDevice="jetson_xavier"), "s3://edge/loupe-tiles-1.0.0.zip", digest)
    [manifest] = recipe["Manifests"]
    assert manifest["Platform"] == {"os": "linux", "architecture": "aarch64"}
    [artifact] = manifest["Artifacts"]
    assert artifact["Unarchive"] == "ZIP" and artifact["Algorithm"] == "SHA-256"
    assert base64.b64decode(artifact["Digest"]) == hashlib.sha256(b"zip").digest()
    assert "{artifacts:decompressedPath}/loupe-tiles-1.0.0" in manifest["Lifecycle"]["Run"]
    assert recipe["ComponentDescription"] == "Loupe model tiles version 3 for the edge"
    x86 = greengrass_recipe(job(TargetPlatform={"Os": "LINUX", "Arch": "X86_64"}, ComponentDescription="d"),
                            "s3://edge/x.zip", None)
    assert x86["Manifests"][0]["Platform"]["architecture"] == "amd64" and "Digest" not in x86["Manifests"][0]["Artifacts"][0]
    assert x86["ComponentDescription"] == "d"


def test_the_manifest_lists_every_model_file_with_its_checksum():
    files = {"model/model.onnx": b"onnx", "model/model.json": b"{}"}
    manifest = bundle_manifest(job(TargetPlatform={"Os": "LINUX", "Arch": "ARM64", "Accelerator": "NVIDIA"},
                                   CompilerOptions='{"gpu-code": "sm_72", "trt-ver": "8", "cuda-ver": "11"}'),
                               {"arn": "arn:aws:lookoutvision:us-east-1:1:model/tiles/3"}, files)
    assert manifest["files"]["model/model.onnx"] == {"sha256": hashlib.sha256(b"onnx").hexdigest(), "bytes": 4}
    assert manifest["target"]["CompilerOptions"].startswith('{"gpu-code"')  # recorded, not used
    assert manifest["runtime"]["onnxruntime"] and manifest["component"] == {"name": "loupe-tiles", "version": "1.0.0"}
