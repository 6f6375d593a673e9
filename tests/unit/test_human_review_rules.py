"""The pure rules of human review: activation conditions, flow definition limits, claims and their
expiry, majority consolidation and mask merging, the A2I output layout."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from loupe_common import human_loop_messages as m
from loupe_human_loop.completion import consolidate, merge_masks
from loupe_human_loop.loops import iso, output_uri
from loupe_human_loop.review import _holds, _open_for

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def conditions(*nodes: dict) -> m.ActivationConditions:
    return m.ActivationConditions.model_validate({"Conditions": list(nodes)})


def prediction(anomalous: bool, confidence: float, request_id: str = "r-1") -> m.Prediction:
    return m.Prediction(is_anomalous=anomalous, confidence=confidence, request_id=request_id)


LOW = {"ConditionType": "ConfidenceCheck", "ConditionParameters": {"ConfidenceLessThan": 0.8}}
ANOMALOUS = {"ConditionType": "PredictedAnomalous"}
NORMAL = {"ConditionType": "PredictedNormal"}


def test_top_level_conditions_start_a_loop_when_any_holds():
    rule = conditions(LOW, ANOMALOUS)
    assert m.activation_reasons(rule, prediction(False, 0.6)) == ["ConfidenceCheck"]
    assert m.activation_reasons(rule, prediction(True, 0.95)) == ["PredictedAnomalous"]
    assert m.activation_reasons(rule, prediction(True, 0.5)) == ["ConfidenceCheck", "PredictedAnomalous"]
    assert m.activation_reasons(rule, prediction(False, 0.95)) == []


def test_and_needs_every_child_and_or_any():
    both = conditions({"And": [LOW, NORMAL]})
    assert m.activation_reasons(both, prediction(False, 0.7)) == ["ConfidenceCheck", "PredictedNormal"]
    assert m.activation_reasons(both, prediction(True, 0.7)) == []  # a failed And leaves no reasons behind
    either = conditions({"And": [LOW, {"Or": [ANOMALOUS, NORMAL]}]})
    assert m.activation_reasons(either, prediction(True, 0.7)) == ["ConfidenceCheck", "PredictedAnomalous"]


def test_sampling_is_a_fixed_share_decided_by_the_request_id():
    rule = conditions({"ConditionType": "Sampling", "ConditionParameters": {"RandomSamplingPercentage": 25}})
    picked = [bool(m.activation_reasons(rule, prediction(False, 1.0, f"req-{i}"))) for i in range(4000)]
    assert 0.22 < sum(picked) / len(picked) < 0.28
    again = [bool(m.activation_reasons(rule, prediction(False, 1.0, f"req-{i}"))) for i in range(4000)]
    assert picked == again  # a redelivered image decides the same way
    never = conditions({"ConditionType": "Sampling", "ConditionParameters": {"RandomSamplingPercentage": 0}})
    assert not any(m.activation_reasons(never, prediction(False, 1.0, f"req-{i}")) for i in range(500))


@pytest.mark.parametrize("node", [
    {"ConditionType": "ConfidenceCheck", "ConditionParameters": {"ConfidenceLessThan": 1.5}},
    {"ConditionType": "ConfidenceCheck", "ConditionParameters": {}},
    {"ConditionType": "Sampling", "ConditionParameters": {"RandomSamplingPercentage": 101}},
    {"ConditionType": "PredictedNormal", "ConditionParameters": {"ConfidenceLessThan": 0.5}},
    {"ConditionType": "LabelConfidence"},
    {"And": []},
])
def test_malformed_conditions_are_refused(node):
    with pytest.raises(ValidationError):
        conditions(node)


def loop_config(**changes) -> dict:
    return {"FlowDefinitionName": "line-7", "HumanLoopConfig": {
        "TaskTitle": "Check", "TaskDescription": "Look", **changes}}


@pytest.mark.parametrize("changes", [
    {"TaskCount": 0}, {"TaskCount": 4}, {"TaskAvailabilityLifetimeInSeconds": 0},
    {"TaskAvailabilityLifetimeInSeconds": 864_001}, {"TaskTimeLimitInSeconds": 29},
])
def test_flow_definition_limits(changes):
    with pytest.raises(ValidationError):
        m.FlowDefinitionSpec.model_validate(loop_config(**changes))
    m.FlowDefinitionSpec.model_validate(loop_config(TaskCount=3, TaskAvailabilityLifetimeInSeconds=864_000,
                                                    TaskTimeLimitInSeconds=30))


def test_dataset_feedback_needs_a_project_and_names_follow_a2i():
    with pytest.raises(ValidationError, match="needs HumanLoopActivationConfig"):
        m.FlowDefinitionSpec.model_validate({**loop_config(), "DatasetFeedback": {"DatasetType": "train"}})
    for bad in ("Line-7", "line_7", "-line", "line-", "x" * 64):
        with pytest.raises(ValidationError):
            m.FlowDefinitionSpec.model_validate({**loop_config(), "FlowDefinitionName": bad})


def test_activated_loop_names_are_valid_and_stable():
    name = m.activated_loop_name("line-7", "0f6c-request")
    assert re.fullmatch(m.NAME_PATTERN, name) and len(name) <= 63
    assert name == m.activated_loop_name("line-7", "0f6c-request")
    assert name != m.activated_loop_name("line-8", "0f6c-request")


def claim(who: str, minutes_left: float) -> dict:
    return {"reviewer": who, "claimed_at": NOW - timedelta(minutes=1),
            "expires_at": NOW + timedelta(minutes=minutes_left)}


def loop(task_count: int = 1, answers=(), claims=(), skipped=()) -> dict:
    return {"task_count": task_count, "answers": [{"workerId": w} for w in answers], "claims": list(claims),
            "skipped": list(skipped)}


def test_a_claim_locks_a_task_until_it_expires():
    held = loop(claims=[claim("ann", 2)])
    assert not _open_for(held, "ben", NOW)
    assert _holds(held, "ann", NOW) is not None
    abandoned = loop(claims=[claim("ann", -0.1)])  # past TaskTimeLimitInSeconds: back in the queue
    assert _open_for(abandoned, "ben", NOW) and _holds(abandoned, "ann", NOW) is None


def test_each_reviewer_answers_an_item_once_and_skips_stick():
    three = loop(task_count=3, answers=["ann"], claims=[claim("ben", 2)])
    assert _open_for(three, "cat", NOW)
    assert not _open_for(three, "ann", NOW) and not _open_for(three, "ben", NOW)
    assert not _open_for(loop(task_count=3, skipped=["cat"]), "cat", NOW)
    assert not _open_for(loop(task_count=2, answers=["ann"], claims=[claim("ben", 1)]), "cat", NOW)


def test_consolidation_is_the_majority_with_agreement():
    assert consolidate(["anomaly", "normal", "anomaly"]) == {
        "label": "anomaly", "agreement": 0.6667, "votes": {"anomaly": 2, "normal": 1}, "tie": False}
    assert consolidate(["normal"]) == {"label": "normal", "agreement": 1.0, "votes": {"normal": 1}, "tie": False}
    tie = consolidate(["normal", "anomaly"])
    assert tie["label"] == "anomaly" and tie["tie"] and tie["agreement"] == 0.5


def png_mask(rows: slice) -> bytes:
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[rows, :, 0] = 255
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "PNG")
    return out.getvalue()


def test_masks_merge_by_pixel_majority():
    merged = np.asarray(Image.open(io.BytesIO(merge_masks([png_mask(slice(0, 4)), png_mask(slice(2, 6)),
                                                           png_mask(slice(3, 8))]))))
    painted = merged[..., 0] == 255
    assert painted[:, 0].tolist() == [False, False, True, True, True, True, False, False]
    assert (merged[~painted] == 0).all()


def test_output_location_and_timestamps_follow_a2i():
    flow = {"_id": "line-7", "spec": {"OutputConfig": {"S3OutputPath": "s3://reviews/out/"}}}
    created = datetime(2026, 11, 21, 9, 5, 7, 123456, tzinfo=UTC)
    assert output_uri(flow, "loop-1", created) == "s3://reviews/out/line-7/2026/11/21/09/05/07/loop-1/output.json"
    assert iso(created) == "2026-11-21T09:05:07.123Z"


def test_answers_in_the_shapes_of_aws_task_templates():
    import base64

    from loupe_human_loop.completion import imitated

    content = {"anomaly": {"label": "anomaly", "maskS3Uri": "s3://b/m.png"}}
    categories = {"AnswerFormat": "crowd-image-classifier", "Categories": {"normal": "good", "anomaly": "bad"}}
    assert imitated(categories, content, None, (96, 64)) == {"crowd-image-classifier": {"label": "bad"}}
    painted = imitated({"AnswerFormat": "crowd-semantic-segmentation"}, content, b"\x89PNG...", (96, 64))
    assert painted == {"crowd-semantic-segmentation": {
        "inputImageProperties": {"width": 96, "height": 64}, "labelMappings": {"anomaly": {"color": "#ff0000"}},
        "labeledImage": {"pngImageData": base64.b64encode(b"\x89PNG...").decode()}}}
    normal = imitated({"AnswerFormat": "crowd-semantic-segmentation"}, {"anomaly": {"label": "normal"}}, None, (96, 64))
    assert normal == {"crowd-semantic-segmentation": {"inputImageProperties": {"width": 96, "height": 64},
                                                      "labelMappings": {}}}
