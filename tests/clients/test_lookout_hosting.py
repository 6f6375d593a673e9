"""StartModel / StopModel / DetectAnomalies through unmodified boto3, against the hosting service and
real inference workers running the trained ONNX model."""

from __future__ import annotations

import asyncio
import io
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from botocore.exceptions import ClientError
from PIL import Image

from loupe_common.topics import model_request_topic

from helpers import (
    OUTPUT, code_of, fill, pattern_png, png_bytes, server_timing, signed_request, train_and_host, wait_model,
    wait_status,
)


@pytest.fixture(scope="module")
def hosted(lookout, stack):
    """A trained segmentation model version 1 (its test images' masks name one class, scratch),
    started on one inference unit."""
    project = "hosted-model"
    started, desc = train_and_host(lookout, stack.data_dir / "s3", project, segmentation=True)
    evaluation = signed_request(stack.endpoint_url, "GET", f"/loupe/v1/projects/{project}/models/1/evaluation").json()
    assert evaluation["data"]["ModelKind"] == "segmentation", evaluation
    assert [(c["Name"], c["Color"]) for c in evaluation["data"]["AnomalyClasses"]] == [("scratch", "#FF0000")]
    assert started["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert started["Status"] == "STARTING_HOSTING"
    assert desc["MinInferenceUnits"] == 1
    return project


async def topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def detect(lookout, project: str, image: bytes, content_type: str = "image/png", version: str = "1") -> dict:
    return lookout.detect_anomalies(ProjectName=project, ModelVersion=version, Body=image,
                                    ContentType=content_type)["DetectAnomalyResult"]


def test_normal_and_defective_images(lookout, hosted):
    normal = [detect(lookout, hosted, pattern_png(9000 + i)) for i in range(4)]
    defective = [detect(lookout, hosted, pattern_png(9500 + i, defect=True)) for i in range(4)]
    assert [r["IsAnomalous"] for r in normal] == [False] * 4, normal
    assert [r["IsAnomalous"] for r in defective] == [True] * 4, [r["Confidence"] for r in defective]
    for result in normal + defective:
        assert result["Source"] == {"Type": "direct"}
        assert 0.5 <= result["Confidence"] <= 1.0
        assert result["Anomalies"][0]["Name"] == "background"
        assert result["Anomalies"][0]["PixelAnomaly"]["Color"] == "#FFFFFF"
    for result in defective:
        mask = Image.open(io.BytesIO(result["AnomalyMask"]))
        assert mask.format == "PNG" and mask.size == (160, 160)
        assert [a["Name"] for a in result["Anomalies"]] == ["background", "scratch"]
        anomaly = result["Anomalies"][1]["PixelAnomaly"]
        assert anomaly["Color"] == "#FF0000"  # the training dataset's colour map
        red = sum(1 for px in mask.convert("RGB").get_flattened_data() if px == (255, 0, 0))
        assert anomaly["TotalPercentageArea"] == pytest.approx(red / (160 * 160), abs=1e-5)
        assert 0 < anomaly["TotalPercentageArea"] < 0.5
        assert result["Anomalies"][0]["PixelAnomaly"]["TotalPercentageArea"] == pytest.approx(
            1 - anomaly["TotalPercentageArea"], abs=1e-5)


def test_server_timing_splits_the_round_trip(lookout, hosted):
    response = lookout.detect_anomalies(ProjectName=hosted, ModelVersion="1", Body=pattern_png(9002),
                                        ContentType="image/png")
    timing = server_timing(response)
    assert set(timing) == {"roundtrip", "inference"}, timing
    assert 0 < timing["inference"] <= timing["roundtrip"], timing


def test_jpeg_and_other_sizes(lookout, hosted):
    # The same framing at twice the resolution (a different zoom would be a different picture: its
    # whole anomaly map rises above what normal images show, and the model rightly flags it).
    rgb = Image.open(io.BytesIO(pattern_png(9100))).resize((320, 320), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=95)
    result = detect(lookout, hosted, out.getvalue(), "image/jpeg")
    assert result["IsAnomalous"] is False
    assert Image.open(io.BytesIO(result["AnomalyMask"])).size == (320, 320)


def test_large_image_travels_by_claim_check(lookout, hosted, stack):
    big = png_bytes(900, 900, seed=3)  # random noise: ~2.4 MB, above the 512 KiB claim-check threshold
    assert len(big) > 1024 * 1024
    result = detect(lookout, hosted, big)
    assert 0.5 <= result["Confidence"] <= 1 and result["Source"] == {"Type": "direct"}
    assert Image.open(io.BytesIO(result["AnomalyMask"])).size == (900, 900)
    claims = stack.data_dir / "blobs" / "transfer" / "detect"
    # The worker removes the claim check once the broker has acknowledged its reply, which may be
    # a moment after the gateway has the reply.
    deadline = time.monotonic() + 5
    while claims.exists() and any(claims.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not claims.exists() or not any(claims.iterdir())


def _error(lookout, project, body, content_type, version="1"):
    with pytest.raises(ClientError) as excinfo:
        detect(lookout, project, body, content_type, version)
    return code_of(excinfo), excinfo.value.response["Error"]["Message"]


def test_bad_images(lookout, hosted):
    good = pattern_png(1)
    cases = {
        "wrong type": (good, "image/gif", "not supported"),
        "type does not match": (good, "image/jpeg", "body is a PNG"),
        "not an image": (b"hello world" * 20, "image/png", "not a PNG or JPEG"),
        "truncated": (good[: len(good) // 2], "image/png", "could not be decoded"),
        "too small": (png_bytes(63, 80), "image/png", "minimum is 64x64"),
        "too large": (_huge_png(4097, 64), "image/png", "maximum is 4096x4096"),
    }
    for name, (body, content_type, words) in cases.items():
        (code, status), message = _error(lookout, hosted, body, content_type)
        assert (code, status) == ("ValidationException", 400), name
        assert words in message, (name, message)


def _huge_png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height)).save(out, format="PNG")
    return out.getvalue()


def test_decompression_bomb_is_refused_from_the_header(lookout, hosted):
    (code, _), message = _error(lookout, hosted, _huge_png(20000, 20000), "image/png")
    assert code == "ValidationException" and "maximum is 4096x4096" in message


def test_missing_content_type_and_oversized_body(stack, hosted):
    path = f"/2020-11-20/projects/{hosted}/models/1/detect"
    response = signed_request(stack.endpoint_url, "POST", path, body=pattern_png(1))
    assert response.status_code == 400 and "Content-Type is required" in response.json()["message"]
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * (8 * 1024 * 1024 + 10)
    response = signed_request(stack.endpoint_url, "POST", path, body=big, headers={"Content-Type": "image/png"})
    assert response.status_code == 400 and "the limit is 8388608 bytes" in response.json()["message"]


def test_unknown_or_unhosted_models(lookout, hosted, stack):
    image = pattern_png(1)
    (code, status), _ = _error(lookout, hosted, image, "image/png", version="7")
    assert (code, status) == ("ResourceNotFoundException", 404)
    (code, status), _ = _error(lookout, "no-such-project", image, "image/png")
    assert (code, status) == ("ResourceNotFoundException", 404)
    (code, status), _ = _error(lookout, hosted, image, "image/png", version="0x")
    assert (code, status) == ("ValidationException", 400)


def test_native_route_threshold_and_mask(stack, hosted):
    path = f"/loupe/v1/projects/{hosted}/models/1/detect"
    image = pattern_png(9001)
    default = signed_request(stack.endpoint_url, "POST", path, body=image, headers={"Content-Type": "image/png"}).json()
    assert default["error_code"] == 0 and default["request_id"]
    score = default["data"]["Score"]
    assert default["data"]["DetectAnomalyResult"]["IsAnomalous"] is (score >= default["data"]["Threshold"])
    low = signed_request(stack.endpoint_url, "POST", f"{path}?threshold={score - 1e-3}&mask=false", body=image,
                         headers={"Content-Type": "image/png"}).json()
    assert low["data"]["DetectAnomalyResult"]["IsAnomalous"] is True
    assert "AnomalyMask" not in low["data"]["DetectAnomalyResult"]
    bad = signed_request(stack.endpoint_url, "POST", f"{path}?threshold=abc", body=image,
                         headers={"Content-Type": "image/png"})
    assert bad.status_code == 400 and bad.json()["error_detail"]["code"] == "ERROR_INVALID_PARAMETER"
    wrong = signed_request(stack.endpoint_url, "POST", path, body=image, headers={"Content-Type": "text/plain"})
    assert wrong.json()["error_detail"]["code"] == "UNSUPPORTED_FILE_TYPES"


def test_native_route_names_each_failure_by_its_own_code(stack, hosted):
    """Each failure keeps its own AILabTools code on the native route (the Lookout route answers
    ValidationException / ConflictException for them, as AWS did)."""
    path = f"/loupe/v1/projects/{hosted}/models/1/detect"

    def code(body: bytes, version: str = "1") -> tuple[str, int]:
        r = signed_request(stack.endpoint_url, "POST", path.replace("/models/1/", f"/models/{version}/"), body=body,
                           headers={"Content-Type": "image/png"})
        return r.json()["error_detail"]["code"], r.status_code

    assert code(png_bytes(32, 32)) == ("ERROR_LOW_RESOLUTION", 422)
    assert code(png_bytes(64, 4097)) == ("ERROR_HIGH_RESOLUTION", 422)
    assert code(pattern_png(9003)[:300]) == ("FILE_DECODING_FAILURE", 400)
    assert code(b"GIF89a" + b"\0" * 100) == ("UNSUPPORTED_FILE_TYPES", 415)
    assert code(pattern_png(9004), version="7") == ("ERROR_RESOURCE_NOT_FOUND", 404)


def test_start_errors(lookout, hosted, stack):
    with pytest.raises(ClientError) as excinfo:  # already hosted with these units
        lookout.start_model(ProjectName=hosted, ModelVersion="1", MinInferenceUnits=1)
    assert code_of(excinfo) == ("ConflictException", 409)
    path = f"/2020-11-20/projects/{hosted}/models/1/start"
    for body, words in ((b'{"MinInferenceUnits": 0}', "minInferenceUnits"), (b"{}", "Member must not be null"),
                        (b'{"MinInferenceUnits": "many"}', "minInferenceUnits")):
        response = signed_request(stack.endpoint_url, "POST", path, body=body,
                                  headers={"Content-Type": "application/json"})
        assert response.status_code == 400 and words in response.json()["message"], response.text
    with pytest.raises(ClientError) as excinfo:
        lookout.start_model(ProjectName=hosted, ModelVersion="1", MinInferenceUnits=2, MaxInferenceUnits=1)
    assert code_of(excinfo) == ("ValidationException", 400)
    with pytest.raises(ClientError) as excinfo:
        lookout.start_model(ProjectName=hosted, ModelVersion="1", MinInferenceUnits=1000)
    assert code_of(excinfo) == ("ServiceQuotaExceededException", 402)
    with pytest.raises(ClientError) as excinfo:
        lookout.start_model(ProjectName=hosted, ModelVersion="9", MinInferenceUnits=1)
    assert code_of(excinfo) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as excinfo:  # a hosted model cannot be deleted
        lookout.delete_model(ProjectName=hosted, ModelVersion="1")
    assert code_of(excinfo) == ("ConflictException", 409)


def test_start_while_training_and_stop_when_not_hosted(lookout, stack):
    project = "hosting-early"
    lookout.create_project(ProjectName=project)
    fill(lookout, stack.data_dir / "s3", project, "train", normal=12, anomalous=0, seed=40)
    lookout.create_model(ProjectName=project, OutputConfig=OUTPUT)
    with pytest.raises(ClientError) as excinfo:
        lookout.start_model(ProjectName=project, ModelVersion="1", MinInferenceUnits=1)
    assert code_of(excinfo) == ("ConflictException", 409)
    assert "TRAINING" in excinfo.value.response["Error"]["Message"]
    assert wait_model(lookout, project)["Status"] == "TRAINED"
    with pytest.raises(ClientError) as excinfo:
        lookout.stop_model(ProjectName=project, ModelVersion="1")
    assert code_of(excinfo) == ("ConflictException", 409)
    with pytest.raises(ClientError) as excinfo:  # trained but not hosted
        detect(lookout, project, pattern_png(1))
    assert code_of(excinfo) == ("ConflictException", 409)
    native = signed_request(stack.endpoint_url, "POST", f"/loupe/v1/projects/{project}/models/1/detect",
                            body=pattern_png(1), headers={"Content-Type": "image/png"})
    # On the native route, not hosted reads as on the ingest path.
    assert (native.status_code, native.json()["error_detail"]["code"]) == (404, "ERROR_RESOURCE_NOT_FOUND")
    # An unreadable artifact: hosting fails with the reason, and the version can be deleted.
    (stack.data_dir / "blobs" / "models" / project / "1" / "model.onnx").write_bytes(b"not a model")
    lookout.start_model(ProjectName=project, ModelVersion="1", MinInferenceUnits=1)
    desc = wait_status(lookout, project, "1", "HOSTING_FAILED")
    assert "cannot load model version 1" in desc["StatusMessage"], desc
    lookout.delete_model(ProjectName=project, ModelVersion="1")


def test_client_token_makes_start_idempotent(lookout, hosted):
    token = "resize-token-1"
    first = lookout.start_model(ProjectName=hosted, ModelVersion="1", MinInferenceUnits=2, ClientToken=token)
    again = lookout.start_model(ProjectName=hosted, ModelVersion="1", MinInferenceUnits=2, ClientToken=token)
    assert first["Status"] == again["Status"] == "HOSTED"  # a resize keeps serving
    desc = lookout.describe_model(ProjectName=hosted, ModelVersion="1")["ModelDescription"]
    assert desc["MinInferenceUnits"] == 2
    with pytest.raises(ClientError) as excinfo:
        lookout.start_model(ProjectName=hosted, ModelVersion="1", MinInferenceUnits=3, ClientToken=token)
    assert code_of(excinfo) == ("ConflictException", 409)
    assert detect(lookout, hosted, pattern_png(9002))["IsAnomalous"] is False
    lookout.start_model(ProjectName=hosted, ModelVersion="1", MinInferenceUnits=1)


def test_stop_model_returns_to_trained(lookout, hosted, stack):
    # Last in this module: the model stops serving.
    assert model_request_topic(hosted, 1) in asyncio.run(topics(stack.kafka_bootstrap))
    stopped = lookout.stop_model(ProjectName=hosted, ModelVersion="1")
    assert stopped["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert stopped["Status"] == "STOPPING_HOSTING"
    desc = wait_status(lookout, hosted, "1", "TRAINED")
    assert "MinInferenceUnits" not in desc
    assert model_request_topic(hosted, 1) not in asyncio.run(topics(stack.kafka_bootstrap))  # not left behind
    with pytest.raises(ClientError) as excinfo:
        detect(lookout, hosted, pattern_png(1))
    assert code_of(excinfo) == ("ConflictException", 409)
    # and it can be started again
    lookout.start_model(ProjectName=hosted, ModelVersion="latest", MinInferenceUnits=1)
    wait_status(lookout, hosted, "1", "HOSTED")
    assert detect(lookout, hosted, pattern_png(9003), version="latest")["IsAnomalous"] is False
    lookout.stop_model(ProjectName=hosted, ModelVersion="1")
    wait_status(lookout, hosted, "1", "TRAINED")
    lookout.delete_model(ProjectName=hosted, ModelVersion="1")
