"""JSON from callers: everything json.loads would crash on or pass through broken is refused in
words (the fuzz findings: deep nesting, 5,000-digit numbers, NaN, unpaired surrogates)."""

from __future__ import annotations

import pytest

from loupe_common.human_loop_messages import MAX_CONDITION_DEPTH, ActivationConditions
from loupe_common.json_bodies import MAX_DEPTH, JsonRefused, loads


@pytest.mark.parametrize(("body", "reason"), [
    (b"[" * 5000, "nests deeper"), (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nests deeper"),
    (b'{"a":' * 50 + b"1" + b"}" * 50, "nests deeper"), (b"9" * 5000, "characters; the limit is"),
    (b"1e99999", "out of range"), (b'{"x": NaN}', "NaN is not a JSON value"), (b"-Infinity", "not a JSON value"),
    (b'{"x": "\\ud800"}', "unpaired surrogate"), (b'{"\\udfff": 1}', "unpaired surrogate"),
    (b"{", "not valid JSON (Expecting"), (b"\xff\xfe\x00", "not valid JSON"), (b"", "not valid JSON"),
])
def test_refused_with_a_reason(body, reason):
    with pytest.raises(JsonRefused, match=reason.replace("(", r"\(")):
        loads(body)


def test_ordinary_json_is_unchanged():
    body = b'{"a": [1, -2.5e3, "caf\\u00e9 \\ud83d\\ude00", {"b": null, "c": true}], "n": 12345678901234567890}'
    assert loads(body) == {"a": [1, -2500.0, "café 😀", {"b": None, "c": True}], "n": 12345678901234567890}
    nested = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert loads(nested) is not None


def test_activation_conditions_nest_only_so_deep():
    leaf = {"ConditionType": "PredictedAnomalous"}
    node: dict = leaf
    for level in range(200):
        node = {"And" if level % 2 else "Or": [node]}
    with pytest.raises(ValueError, match=f"at most {MAX_CONDITION_DEPTH}"):
        ActivationConditions.model_validate({"Conditions": [node]})
    shallow: dict = leaf
    for _ in range(MAX_CONDITION_DEPTH - 1):
        shallow = {"And": [shallow]}
    assert ActivationConditions.model_validate({"Conditions": [shallow]}).Conditions


def test_image_errors_say_what_pillow_said_without_object_reprs():
    from loupe_common.images import ImageRejected, decode_image

    with pytest.raises(ImageRejected) as rejected:
        decode_image(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    assert "could not be decoded" in str(rejected.value) and " at 0x" not in str(rejected.value)
