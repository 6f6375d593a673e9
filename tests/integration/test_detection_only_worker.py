"""A detection-only inference worker (LOUPE_TAGGING_ENABLED=false), the configuration the README
recommends where memory is tight: it serves DetectAnomalies, and nobody answers tagging, which the
gateway reports as AIS.0506 when its wait runs out instead of hanging."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image

from helpers import IAM_BODY, make_client, pattern_png, train_and_host

PROJECT = "detection-only"


@pytest.fixture(scope="module")
def detection_only(tmp_path_factory: pytest.TempPathFactory):
    from loupe_local.stack import Stack

    stack = Stack.on_free_ports(tmp_path_factory.mktemp("detection-only"), extra_env={
        "LOUPE_TAGGING_ENABLED": "false", "LOUPE_TAGGING_TIMEOUT_SECONDS": "2"})
    with stack:
        yield stack


def test_detects_and_refuses_tagging_in_time(detection_only):
    lookout = make_client("lookoutvision", detection_only.endpoint_url)
    train_and_host(lookout, detection_only.data_dir / "s3", PROJECT, test_normal=2, test_anomalous=2)
    normal = lookout.detect_anomalies(ProjectName=PROJECT, ModelVersion="1", Body=pattern_png(9000),
                                      ContentType="image/png")["DetectAnomalyResult"]
    defective = lookout.detect_anomalies(ProjectName=PROJECT, ModelVersion="1",
                                         Body=pattern_png(9500, defect=True), ContentType="image/png")
    assert normal["IsAnomalous"] is False
    assert defective["DetectAnomalyResult"]["IsAnomalous"] is True

    token = httpx.post(detection_only.endpoint_url + "/v3/auth/tokens", json=IAM_BODY).headers["x-subject-token"]
    image = io.BytesIO()
    Image.open(io.BytesIO(pattern_png(1))).convert("RGB").save(image, format="JPEG")
    answer = httpx.post(detection_only.endpoint_url + "/v1.0/image/tagging", timeout=30,
                        headers={"Content-Type": "application/json", "X-Auth-Token": token},
                        json={"image": base64.b64encode(image.getvalue()).decode()})
    assert answer.status_code >= 400 and answer.json()["error_code"] == "AIS.0506", answer.text
