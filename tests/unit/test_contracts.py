"""Shared contracts: ARNs, pagination tokens, tag patterns, error rendering, validation messages."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import TypeAdapter, ValidationError

from loupe_common.arn import model_arn, parse_arn, project_arn
from loupe_common.errors import (
    AilabError,
    ErrorCode,
    LoupeError,
    ResourceType,
    ServiceError,
    ailab_envelope,
    aws_error_response,
)
from loupe_common.lookout import TagKey, TagValue
from loupe_common.pagination import decode_token, encode_token
from loupe_common.settings import Settings
from loupe_gateway.validation import build
from loupe_common.dataset_messages import CreateDataset, ListProjects

SETTINGS = Settings(_env_file=None)


def test_arns_round_trip():
    assert parse_arn(SETTINGS, project_arn(SETTINGS, "demo_1")).project_name == "demo_1"
    parsed = parse_arn(SETTINGS, model_arn(SETTINGS, "demo", "12"))
    assert (parsed.resource_type, parsed.project_name, parsed.model_version) == (ResourceType.MODEL, "demo", "12")


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:lookoutvision:us-east-1:123456789012:project/",
        "arn:aws:lookoutvision:us-east-1:123456789012:model/demo/0",
        "arn:aws:lookoutvision:eu-west-1:123456789012:project/demo",
        "arn:aws:lookoutvision:us-east-1:999999999999:project/demo",
        "arn:aws:s3:::bucket",
        "project/demo",
    ],
)
def test_bad_arns_are_validation_errors(arn):
    with pytest.raises(LoupeError) as excinfo:
        parse_arn(SETTINGS, arn)
    assert excinfo.value.error.code is ErrorCode.VALIDATION


def test_pagination_tokens_are_base64_bound_and_signed():
    token = encode_token("scope-a", {"after": "project-7"})
    assert TypeAdapter(str).validate_python(token)
    import re

    assert re.fullmatch(r"[a-zA-Z0-9/+=]{0,2048}", token)
    assert decode_token("scope-a", token) == {"after": "project-7"}
    with pytest.raises(LoupeError):
        decode_token("scope-b", token)
    doc = json.loads(base64.b64decode(token))
    doc["p"]["after"] = "project-0"
    forged = base64.b64encode(json.dumps(doc).encode()).decode()
    with pytest.raises(LoupeError):
        decode_token("scope-a", forged)
    for junk in ("", "!!!", base64.b64encode(b"[1,2]").decode()):
        with pytest.raises(LoupeError):
            decode_token("scope-a", junk)


@pytest.mark.parametrize("key", ["team", "a.b:c/d=e+f-g@h", "Größe", "名前", "with space", "x" * 128])
def test_tag_keys_allowed(key):
    assert TypeAdapter(TagKey).validate_python(key) == key


@pytest.mark.parametrize("key", ["", "x" * 129, "semi;colon", "quote'", "star*"])
def test_tag_keys_refused(key):
    with pytest.raises(ValidationError):
        TypeAdapter(TagKey).validate_python(key)


def test_tag_value_may_be_empty_but_bounded():
    assert TypeAdapter(TagValue).validate_python("") == ""
    with pytest.raises(ValidationError):
        TypeAdapter(TagValue).validate_python("v" * 257)


def test_aws_error_shape():
    status, headers, body = aws_error_response(
        ServiceError(code=ErrorCode.NOT_FOUND, message="gone", resource_id="p", resource_type=ResourceType.PROJECT)
    )
    assert status == 404 and headers == {"X-Amzn-ErrorType": "ResourceNotFoundException"}
    assert body["message"] == body["Message"] == "gone"
    assert (body["ResourceId"], body["ResourceType"]) == ("p", "PROJECT")
    status, headers, body = aws_error_response(ServiceError(code=ErrorCode.INTERNAL, message="x"))
    assert status == 500 and headers["Retry-After"] == "1"
    status, _, body = aws_error_response(ServiceError(code=ErrorCode.QUOTA_EXCEEDED, message="x"))
    assert status == 402 and body["QuotaCode"] and body["ServiceCode"] == "lookoutvision"


def test_ailab_envelope():
    status, body = ailab_envelope(request_id="r-1")
    assert status == 200 and body["error_code"] == 0 and body["error_detail"]["status_code"] == 200
    assert set(body) == {"request_id", "log_id", "error_code", "error_detail"}
    status, body = ailab_envelope(request_id="r-2", code="FILE_SIZE_EXCEEDS_LIMIT", message="too big")
    assert status == 413 and body["error_code"] == 413
    assert body["error_detail"] == {
        "status_code": 413, "code": "FILE_SIZE_EXCEEDS_LIMIT",
        "code_message": "File size exceeds limit.", "message": "too big",
    }
    with pytest.raises(ValueError):
        AilabError("NOT_A_CODE", "x")


def test_validation_messages_name_fields_like_aws():
    with pytest.raises(LoupeError) as excinfo:
        build(ListProjects, request_id="r", max_results=500)
    assert excinfo.value.error.message == (
        "1 validation error detected: Value '500' at 'maxResults' failed to satisfy constraint: "
        "Member must have value less than or equal to 100"
    )
    with pytest.raises(LoupeError) as excinfo:
        build(CreateDataset, request_id="r", project_name="ok", dataset_type=None,
              dataset_source={"GroundTruthManifest": {"S3Object": {"Bucket": "b!", "Key": "k"}}})
    message = excinfo.value.error.message
    assert message.startswith("2 validation errors detected")
    assert "at 'datasetType' failed to satisfy constraint: Member must not be null" in message
    assert "at 'datasetSource.groundTruthManifest.s3Object.bucket'" in message


def test_production_refuses_dev_credentials():
    with pytest.raises(ValidationError):
        Settings(_env_file=None, environment="production")
    Settings(_env_file=None, environment="production", access_key_id="AKIAPROD", secret_access_key="s3cr3t-value",
             iam_password="an-iam-s3cret")


def test_huawei_error_shape():
    from loupe_common.errors import HuaweiError

    err = HuaweiError(400, "AIS.0014", "The JSON format of the request body is incorrect.")
    assert err.status == 400
    assert err.body() == {"error_code": "AIS.0014", "error_msg": "The JSON format of the request body is incorrect."}
