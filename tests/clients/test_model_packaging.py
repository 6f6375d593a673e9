"""StartModelPackagingJob / DescribeModelPackagingJob / ListModelPackagingJobs through unmodified
boto3 and the AWS CLI, as Lookout's edge documentation calls them: a trained model version becomes
an edge bundle and a Greengrass V2 recipe in the job's S3 output location."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from helpers import DEV_KEY, DEV_SECRET, OUTPUT, REGION, code_of, fill, signed_request, train_model, wait_model

GREENGRASS = {"ComponentName": "loupe-line7", "ComponentDescription": "line 7 tiles",
              "TargetPlatform": {"Os": "LINUX", "Arch": "X86_64"},
              "S3OutputLocation": {"Bucket": "edge-bkt", "Prefix": "components/"},
              "Tags": [{"Key": "line", "Value": "7"}]}


@pytest.fixture(scope="module")
def model(lookout, stack):
    train_model(lookout, stack.data_dir / "s3", "packaged-model", segmentation=True)  # masks: the edge test reads them
    return "packaged-model"


def wait_job(lookout, project: str, job: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = lookout.describe_model_packaging_job(ProjectName=project, JobName=job)["ModelPackagingDescription"]
        if found["Status"] in ("SUCCEEDED", "FAILED"):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.3)


def test_a_job_writes_the_bundle_and_recipe(lookout, stack, model):
    started = lookout.start_model_packaging_job(ProjectName=model, ModelVersion="1", JobName="line7-v1",
                                                Description="first edge build", Configuration={"Greengrass": GREENGRASS})
    assert started["JobName"] == "line7-v1"
    first = lookout.describe_model_packaging_job(ProjectName=model, JobName="line7-v1")["ModelPackagingDescription"]
    assert first["Status"] in ("CREATED", "RUNNING", "SUCCEEDED")
    done = wait_job(lookout, model, "line7-v1")
    assert done["Status"] == "SUCCEEDED", done
    assert done["ModelPackagingMethod"] == "Greengrass" and done["ModelVersion"] == "1"
    assert done["ModelPackagingJobDescription"] == "first edge build"
    assert done["ModelPackagingConfiguration"]["Greengrass"]["ComponentVersion"] == "1.0.0"  # Lookout's default
    out = done["ModelPackagingOutputDetails"]["Greengrass"]
    assert out == {"ComponentName": "loupe-line7", "ComponentVersion": "1.0.0", "ComponentVersionArn":
                   "arn:aws:greengrass:us-east-1:123456789012:components:loupe-line7:versions:1.0.0"}
    assert done["LastUpdatedTimestamp"] >= done["CreationTimestamp"]

    folder = stack.data_dir / "s3" / "edge-bkt" / "components" / "loupe-line7" / "1.0.0"
    bundle = (folder / "loupe-line7-1.0.0.zip").read_bytes()
    recipe = json.loads((folder / "recipe.json").read_text())
    assert recipe["RecipeFormatVersion"] == "2020-01-25" and recipe["ComponentName"] == "loupe-line7"
    [manifest] = recipe["Manifests"]
    assert manifest["Platform"] == {"os": "linux", "architecture": "amd64"}
    [artifact] = manifest["Artifacts"]
    assert artifact["Uri"] == "s3://edge-bkt/components/loupe-line7/1.0.0/loupe-line7-1.0.0.zip"
    assert base64.b64decode(artifact["Digest"]) == hashlib.sha256(bundle).digest()
    with zipfile.ZipFile(io.BytesIO(bundle)) as z:
        names = sorted(z.namelist())
        assert [n for n in names if not n.startswith("runtime/")] == [
            "manifest.json", "model/model.json", "model/model.onnx", "recipe.json"]
        assert {"runtime/loupe_edge/__main__.py", "runtime/loupe_edge/proto/edge_agent.proto"} <= set(names)
        listed = json.loads(z.read("manifest.json"))
        for path, facts in listed["files"].items():  # the checksum manifest holds
            assert hashlib.sha256(z.read(path)).hexdigest() == facts["sha256"]
        assert listed["runtime"]["onnxruntime"] and listed["model_arn"].endswith(f":model/{model}/1")
        assert set(listed["runtime"]["requires"]) == {"numpy", "onnxruntime", "grpcio", "protobuf"}
        assert set(listed["files"]) == set(names) - {"manifest.json", "recipe.json"}  # every file that runs
    hosted_model = (stack.data_dir / "blobs").rglob("model.onnx")
    assert any(p.read_bytes() == zipfile.ZipFile(io.BytesIO(bundle)).read("model/model.onnx") for p in hosted_model)

    listed = lookout.list_model_packaging_jobs(ProjectName=model)["ModelPackagingJobs"]
    assert [j["JobName"] for j in listed] == ["line7-v1"] and listed[0]["Status"] == "SUCCEEDED"


def test_job_names_are_unique_and_client_tokens_make_retries_safe(lookout, model):
    config = {"Greengrass": {**GREENGRASS, "ComponentVersion": "2.0.0"}}
    again = dict(ProjectName=model, ModelVersion="latest", JobName="line7-v2", Configuration=config,
                 ClientToken="retry-line7-v2")
    assert lookout.start_model_packaging_job(**again)["JobName"] == "line7-v2"
    assert lookout.start_model_packaging_job(**again)["JobName"] == "line7-v2"  # the retry: same answer
    with pytest.raises(ClientError) as taken:
        lookout.start_model_packaging_job(ProjectName=model, ModelVersion="1", JobName="line7-v2", Configuration=config)
    assert code_of(taken) == ("ConflictException", 409)
    assert wait_job(lookout, model, "line7-v2")["ModelVersion"] == "1"  # latest resolved
    generated = lookout.start_model_packaging_job(ProjectName=model, ModelVersion="1", Configuration=config)["JobName"]
    assert generated.startswith(f"{model}-1-")
    pages, token = [], None
    while True:
        page = lookout.list_model_packaging_jobs(ProjectName=model, MaxResults=1, **({"NextToken": token} if token else {}))
        pages.append([j["JobName"] for j in page["ModelPackagingJobs"]])
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(sum(pages, [])) == sorted(["line7-v1", "line7-v2", generated]) and all(len(p) == 1 for p in pages)


@pytest.mark.parametrize("greengrass, message", [
    ({**GREENGRASS, "TargetDevice": "jetson_xavier"}, "either TargetDevice or TargetPlatform"),
    ({k: v for k, v in GREENGRASS.items() if k != "TargetPlatform"}, "either TargetDevice or TargetPlatform"),
    ({**GREENGRASS, "TargetPlatform": None, "TargetDevice": "jetson_xavier", "CompilerOptions": "--x"},
     "CompilerOptions with TargetDevice"),
    ({**GREENGRASS, "TargetPlatform": {"Os": "LINUX", "Arch": "ARM64", "Accelerator": "NVIDIA"},
      "CompilerOptions": '{"gpu-code": "sm_72"}'}, "trt-ver, cuda-ver"),
])
def test_configuration_rules_are_validation_errors(lookout, model, greengrass, message):
    greengrass = {k: v for k, v in greengrass.items() if v is not None}
    with pytest.raises(ClientError) as bad:
        lookout.start_model_packaging_job(ProjectName=model, ModelVersion="1", Configuration={"Greengrass": greengrass})
    assert code_of(bad) == ("ValidationException", 400) and message in bad.value.response["Error"]["Message"]


def test_missing_things_and_untrained_versions(lookout, stack, model, project_name):
    config = {"Greengrass": GREENGRASS}
    with pytest.raises(ClientError) as no_version:
        lookout.start_model_packaging_job(ProjectName=model, ModelVersion="9", Configuration=config)
    assert code_of(no_version) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as no_project:
        lookout.list_model_packaging_jobs(ProjectName=project_name)
    assert code_of(no_project) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as no_job:
        lookout.describe_model_packaging_job(ProjectName=model, JobName="never")
    assert code_of(no_job) == ("ResourceNotFoundException", 404)

    lookout.create_project(ProjectName=project_name)
    fill(lookout, stack.data_dir / "s3", project_name, "train", normal=14, anomalous=0, seed=0)
    fill(lookout, stack.data_dir / "s3", project_name, "test", normal=6, anomalous=6, seed=100)
    lookout.create_model(ProjectName=project_name, OutputConfig=OUTPUT)
    try:  # while it trains (a quick model may finish first: then there is nothing to refuse)
        lookout.start_model_packaging_job(ProjectName=project_name, ModelVersion="1", JobName="too-early",
                                          Configuration=config)
        refused = None
    except ClientError as err:
        refused = err
    if refused is not None:
        assert refused.response["Error"]["Code"] == "ConflictException"
        assert "only a trained model version can be packaged" in refused.response["Error"]["Message"]
    wait_model(lookout, project_name)


def test_the_aws_cli_packages_and_describes(stack, model):
    def aws(*args: str) -> dict:
        run = subprocess.run([sys.executable, "-m", "awscli", "lookoutvision", *args, "--endpoint-url",
                              stack.endpoint_url, "--output", "json"], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "AWS_ACCESS_KEY_ID": DEV_KEY, "AWS_SECRET_ACCESS_KEY": DEV_SECRET,
                                  "AWS_DEFAULT_REGION": REGION, "AWS_MAX_ATTEMPTS": "1"})
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)

    config = json.dumps({"Greengrass": {**GREENGRASS, "ComponentName": "loupe-cli", "ComponentVersion": "1.2.3"}})
    assert aws("start-model-packaging-job", "--project-name", model, "--model-version", "1",
               "--job-name", "from-cli", "--configuration", config)["JobName"] == "from-cli"
    deadline = time.monotonic() + 60
    while (found := aws("describe-model-packaging-job", "--project-name", model, "--job-name", "from-cli")
           ["ModelPackagingDescription"])["Status"] not in ("SUCCEEDED", "FAILED"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert found["Status"] == "SUCCEEDED" and found["ModelPackagingOutputDetails"]["Greengrass"]["ComponentVersion"] == "1.2.3"
    assert "from-cli" in [j["JobName"] for j in aws("list-model-packaging-jobs", "--project-name", model)["ModelPackagingJobs"]]


# --- the bundle on an edge PC: the recipe's own Run command, without the rest of Loupe -------------

# What an edge PC does not have: importing any of these in the runtime fails the test.
NOT_ON_THE_EDGE = ("PIL", "scipy", "pydantic", "loupe_common", "loupe_models", "loupe_inference", "loupe_training",
                   "aiokafka", "fastapi")
EDGE_PYTHON = """
import runpy, sys
class NotOnTheEdge:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(name + " is not installed on this edge PC")
sys.meta_path.insert(0, NotOnTheEdge())
assert sys.argv[1] == "-m"
module, sys.argv = sys.argv[2], [sys.argv[2], *sys.argv[3:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def edge_images(folder) -> list:
    """Normal and defective pattern images, square, wide and tall (the runtime resizes each)."""
    from PIL import Image

    from helpers import pattern_png

    paths = []
    for i, shape in enumerate([(160, 160), (400, 300), (120, 420), (96, 96)]):
        for defect in (False, True):
            path = folder / f"frame-{i}-{int(defect)}.png"
            with Image.open(io.BytesIO(pattern_png(900 + i, defect))) as image:
                image.convert("RGB").resize(shape).save(path)
            paths.append(path)
    return paths


def test_the_bundle_runs_under_loupe_edge_alone_and_answers_as_the_hosted_model(lookout, stack, model, tmp_path):
    from PIL import Image

    from loupe_inference.runtime import ModelRuntime

    config = {"Greengrass": {**GREENGRASS, "ComponentVersion": "3.0.0"}}
    lookout.start_model_packaging_job(ProjectName=model, ModelVersion="1", JobName="line7-edge", Configuration=config)
    assert wait_job(lookout, model, "line7-edge")["Status"] == "SUCCEEDED"
    folder = stack.data_dir / "s3" / "edge-bkt" / "components" / "loupe-line7" / "3.0.0"
    bundle_dir = tmp_path / "artifacts" / "loupe-line7-3.0.0"  # where Greengrass unarchives the zip
    with zipfile.ZipFile(folder / "loupe-line7-3.0.0.zip") as z:
        z.extractall(bundle_dir)
    recipe = json.loads((folder / "recipe.json").read_text())
    socket = tmp_path / "edge.sock"
    edge_python = tmp_path / "edge-python.py"
    edge_python.write_text(EDGE_PYTHON.format(blocked=set(NOT_ON_THE_EDGE)))
    run = (recipe["Manifests"][0]["Lifecycle"]["Run"]
           .replace("{artifacts:decompressedPath}", str(tmp_path / "artifacts"))
           .replace("{configuration:/Socket}", str(socket))
           .replace("python3 ", f"{sys.executable} {edge_python} "))
    runtime = subprocess.Popen(["bash", "-c", run], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not socket.exists():
            assert runtime.poll() is None and time.monotonic() < deadline, runtime.stdout.read() if runtime.poll() is not None else "no socket"
            time.sleep(0.1)
        images = edge_images(tmp_path)
        client = [sys.executable, str(Path(__file__).parent / "edge_client.py"),
                  "--proto", str(bundle_dir / "runtime" / "loupe_edge" / "proto" / "edge_agent.proto"),
                  "--socket", str(socket), "--model", "loupe-line7"]

        def answers(*extra: str) -> list[dict]:
            deadline = time.monotonic() + 60
            while True:  # --start all: the model is STARTING for a moment
                done = subprocess.run([*client, *extra, *map(str, images)], capture_output=True, text=True, timeout=120)
                if done.returncode == 0 or "FAILED_PRECONDITION" not in done.stderr or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert done.returncode == 0, done.stderr
            return [json.loads(line) for line in done.stdout.splitlines()]

        by_bytes, by_shared_memory = answers(), answers("--shared-memory")
    finally:
        runtime.terminate()
        log = runtime.communicate(timeout=30)[0]
    assert runtime.returncode == 0, log
    assert f"from {bundle_dir / 'runtime'}" in log, log  # the bundle's own copy of the runtime served

    hosted = ModelRuntime.load(bundle_dir / "model")  # the inference workers' code on the same graph
    assert len(by_bytes) == len(images)
    assert by_bytes == [{**a, "mask": a["mask"] and {**a["mask"], "via": "byte_data"}} for a in by_shared_memory]
    verdicts = []
    for path, answer in zip(images, by_bytes, strict=True):
        with Image.open(path) as image:
            expected = hosted.detect(image.convert("RGB"))
            size = image.size
        verdicts.append(answer["verdict"])
        assert answer["verdict"] == ("anomalous" if expected.is_anomalous else "normal"), path.name
        assert answer["confidence"] == pytest.approx(expected.confidence, abs=1e-5)  # float32 on the wire
        if hosted.kind == "classification":  # as in Lookout: no mask, no anomaly classes
            assert answer["mask"] is None and answer["anomalies"] == {}
            continue
        assert (answer["mask"]["width"], answer["mask"]["height"]) == size
        with Image.open(io.BytesIO(expected.mask_png)) as mask:
            assert answer["mask"]["sha256"] == hashlib.sha256(mask.convert("RGB").tobytes()).hexdigest()
        expected_classes = {spec.name: share for spec, share in expected.found if share > 0.0001}
        assert {k: v[0] for k, v in answer["anomalies"].items() if k != "background"} == pytest.approx(expected_classes)
    assert "anomalous" in verdicts and "normal" in verdicts


def test_loupe_model_package_downloads_and_unpacks_the_bundle(stack, model, tmp_path):
    env = {**os.environ, "LOUPE_ENDPOINT_URL": stack.endpoint_url, "AWS_ACCESS_KEY_ID": DEV_KEY,
           "AWS_SECRET_ACCESS_KEY": DEV_SECRET, "AWS_DEFAULT_REGION": REGION}
    done = subprocess.run([sys.executable, "-m", "loupe_cli", "model", "package", "-p", model, "--version", "1",
                           "--component", "loupe-cli-edge", "--component-version", "4.0.0", "--bucket", "edge-bkt",
                           "--prefix", "cli/", "--platform", "linux/arm64", "--job-name", "cli-edge", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    folder = tmp_path / "loupe-cli-edge-4.0.0"
    assert "python3 -m loupe_edge serve" in done.stdout and str(folder) in done.stdout.replace("\n", "")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["component"] == {"name": "loupe-cli-edge", "version": "4.0.0"}
    assert manifest["target"]["TargetPlatform"] == {"Os": "LINUX", "Arch": "ARM64"}
    for path, facts in manifest["files"].items():
        assert hashlib.sha256((folder / path).read_bytes()).hexdigest() == facts["sha256"]
    assert (folder / "runtime" / "loupe_edge" / "server.py").exists()

    missing = signed_request(stack.endpoint_url, "GET", f"/loupe/v1/projects/{model}/packaging-jobs/never/bundle")
    assert missing.status_code == 404 and missing.json()["error_detail"]["code"] == "ERROR_RESOURCE_NOT_FOUND"
    assert missing.json()["request_id"]
    bad = subprocess.run([sys.executable, "-m", "loupe_cli", "model", "package", "-p", model, "--component", "c",
                          "--bucket", "b", "--platform", "linux/x86_64", "--device", "jetson_xavier"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert bad.returncode == 2 and "not both" in bad.stdout
