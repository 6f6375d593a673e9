"""The A2I runtime API (2019-11-07) through unmodified boto3 (`sagemaker-a2i-runtime`, SigV4 service
`sagemaker`): StartHumanLoop, DescribeHumanLoop, ListHumanLoops, StopHumanLoop, DeleteHumanLoop.
Flow definitions come from Loupe's native route; raw signed requests cover what boto3 refuses to send."""

from __future__ import annotations

import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote, urlencode

import httpx
import pytest
from botocore.exceptions import ClientError, ParamValidationError

from helpers import code_of, make_client, png_bytes, put_object, signed_request

ACCOUNT_ARN = "arn:aws:sagemaker:us-east-1:123456789012"
JSON = {"Content-Type": "application/json"}
MAX_INPUT = 3_145_728


@pytest.fixture(scope="module")
def a2i(stack):
    return make_client("sagemaker-a2i-runtime", stack.endpoint_url)


@pytest.fixture(scope="module")
def flow(stack) -> str:
    return create_flow(stack)


def unique(prefix: str = "loop") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create_flow(stack, max_active: int | None = None, **config) -> str:
    name = unique("flow")
    spec = {"FlowDefinitionName": name, "HumanLoopConfig": {
        "TaskTitle": "Inspect the part", "TaskDescription": "Is the part defective?", "TaskCount": 1,
        "TaskAvailabilityLifetimeInSeconds": 3600, "TaskTimeLimitInSeconds": 300, **config}}
    if max_active is not None:
        spec["MaxActiveHumanLoops"] = max_active
    r = signed_request(stack.endpoint_url, "POST", "/loupe/v1/flow-definitions",
                       body=json.dumps(spec).encode(), headers=JSON)
    assert r.status_code == 200, r.text
    arn = r.json()["data"]["FlowDefinitionArn"]
    assert arn == f"{ACCOUNT_ARN}:flow-definition/{name}"
    return arn


def start(a2i, flow: str, name: str | None = None, content: object = None, **extra) -> str:
    name = name or unique()
    content = {"note": name} if content is None else content
    arn = a2i.start_human_loop(HumanLoopName=name, FlowDefinitionArn=flow,
                               HumanLoopInput={"InputContent": json.dumps(content)}, **extra)["HumanLoopArn"]
    assert arn == f"{ACCOUNT_ARN}:human-loop/{name}"
    return name


def wait_status(a2i, name: str, wanted: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        desc = a2i.describe_human_loop(HumanLoopName=name)
        if desc["HumanLoopStatus"] == wanted:
            return desc
        assert time.monotonic() < deadline, desc
        time.sleep(0.1)


def error(call, **kwargs) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as excinfo:
        call(**kwargs)
    return (*code_of(excinfo), excinfo.value.response["Error"]["Message"])


def raw(stack, method: str, path: str, query: dict | None = None, body: dict | None = None,
        **kw) -> httpx.Response:
    """A SigV4-signed request for the A2I runtime, for inputs boto3 refuses to send."""
    if query:
        path += "?" + urlencode(query, quote_via=quote, safe="-_.~")
    data = json.dumps(body).encode() if body is not None else b""
    headers = JSON if body is not None else {}
    return signed_request(stack.endpoint_url, method, path, body=data, headers=headers,
                          service=kw.pop("service", "sagemaker"), **kw)


def assert_invalid(r: httpx.Response, context: object = None) -> None:
    assert r.status_code == 400, (context, r.text)
    assert r.headers["X-Amzn-ErrorType"].split(":")[0] == "ValidationException", (context, r.text)


def names(summaries: list[dict]) -> list[str]:
    return [s["HumanLoopName"] for s in summaries]


def list_names(a2i, flow: str, **kwargs) -> list[str]:
    return names(a2i.list_human_loops(FlowDefinitionArn=flow, **kwargs)["HumanLoopSummaries"])


def raw_list_names(stack, flow: str, **query) -> list[str]:
    r = raw(stack, "GET", "/human-loops", {"FlowDefinitionArn": flow, **query})
    assert r.status_code == 200, r.text
    return names(r.json()["HumanLoopSummaries"])


# --- StartHumanLoop / DescribeHumanLoop -------------------------------------------------------------


def test_start_and_describe(a2i, flow):
    before = datetime.now(UTC)
    name = start(a2i, flow, content={"taskObject": {"text": "no image here"}, "score": 0.4},
                 DataAttributes={"ContentClassifiers": ["FreeOfPersonallyIdentifiableInformation",
                                                        "FreeOfAdultContent"]})
    desc = a2i.describe_human_loop(HumanLoopName=name)
    assert desc["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert desc["HumanLoopName"] == name
    assert desc["HumanLoopArn"] == f"{ACCOUNT_ARN}:human-loop/{name}"
    assert desc["FlowDefinitionArn"] == flow
    assert desc["HumanLoopStatus"] == "InProgress"
    created = desc["CreationTime"]
    assert created.tzinfo is not None
    assert before - timedelta(seconds=2) <= created <= datetime.now(UTC) + timedelta(seconds=2)
    assert not {"FailureCode", "FailureReason"} & set(desc)
    # Where the output will be is known from the start (AWS's samples print it for InProgress loops).
    assert desc["HumanLoopOutput"]["OutputS3Uri"].endswith(f"/{name}/output.json")
    time.sleep(1.2)  # a plain JSON input has nothing to fail on: it stays InProgress
    assert a2i.describe_human_loop(HumanLoopName=name)["HumanLoopStatus"] == "InProgress"


def test_wire_format(stack, a2i, flow):
    name = start(a2i, flow)
    r = raw(stack, "GET", f"/human-loops/{name}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.headers.get("x-amzn-RequestId")
    body = r.json()
    assert isinstance(body["CreationTime"], str)  # ISO-8601 on the wire (the JS SDK refuses epoch numbers)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]00:00)", body["CreationTime"])
    stopped = raw(stack, "POST", "/human-loops/stop", body={"HumanLoopName": name})
    assert stopped.status_code == 200 and stopped.json() == {}


def test_same_name_same_input_is_idempotent(a2i, flow):
    name = start(a2i, flow, content={"a": 1})
    again = a2i.start_human_loop(HumanLoopName=name, FlowDefinitionArn=flow,
                                 HumanLoopInput={"InputContent": json.dumps({"a": 1})})
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert again["HumanLoopArn"] == f"{ACCOUNT_ARN}:human-loop/{name}"
    assert list_names(a2i, flow).count(name) == 1


def test_same_name_other_input_or_flow_conflicts(stack, a2i, flow):
    name = start(a2i, flow, content={"a": 1})
    code, status, message = error(a2i.start_human_loop, HumanLoopName=name, FlowDefinitionArn=flow,
                                  HumanLoopInput={"InputContent": json.dumps({"a": 2})})
    assert (code, status) == ("ConflictException", 409) and name in message
    other = create_flow(stack)  # loop names are unique in the account, not per flow definition
    code, status, _ = error(a2i.start_human_loop, HumanLoopName=name, FlowDefinitionArn=other,
                            HumanLoopInput={"InputContent": json.dumps({"a": 1})})
    assert (code, status) == ("ConflictException", 409)
    assert a2i.describe_human_loop(HumanLoopName=name)["FlowDefinitionArn"] == flow


@pytest.mark.parametrize("name", ["Upper", "under_score", "-lead", "trail-", "dot.ted", "a" * 64, "spa ce"])
def test_invalid_loop_names(a2i, flow, name):
    code, status, _ = error(a2i.start_human_loop, HumanLoopName=name, FlowDefinitionArn=flow,
                            HumanLoopInput={"InputContent": "{}"})
    assert (code, status) == ("ValidationException", 400)


def test_name_edge_cases_are_valid(a2i, flow):
    tag = uuid.uuid4().hex[:12]
    for name in ("a--b-" + tag, "7" + tag, "x" * 51 + tag):
        assert len(name) <= 63
        start(a2i, flow, name=name)
        assert a2i.describe_human_loop(HumanLoopName=name)["HumanLoopName"] == name


def test_loop_named_stop(a2i, flow):
    """GET/DELETE /human-loops/stop name a loop; only POST /human-loops/stop is StopHumanLoop."""
    start(a2i, flow, name="stop")
    assert a2i.describe_human_loop(HumanLoopName="stop")["HumanLoopStatus"] == "InProgress"
    a2i.stop_human_loop(HumanLoopName="stop")
    wait_status(a2i, "stop", "Stopped", timeout=5)
    a2i.delete_human_loop(HumanLoopName="stop")
    assert error(a2i.describe_human_loop, HumanLoopName="stop")[:2] == ("ResourceNotFoundException", 404)


@pytest.mark.parametrize("arn", [
    "not-an-arn",
    "arn:aws:s3:us-east-1:123456789012:flow-definition/x",
    "arn:aws:sagemaker:us-east-1:12345:flow-definition/x",
    f"{ACCOUNT_ARN}:human-loop/x",
    f"{ACCOUNT_ARN}:flow-definition/" + "f" * 1000,  # 1,054 characters: above 1,024
])
def test_invalid_flow_arn(a2i, arn):
    code, status, _ = error(a2i.start_human_loop, HumanLoopName=unique(), FlowDefinitionArn=arn,
                            HumanLoopInput={"InputContent": "{}"})
    assert (code, status) == ("ValidationException", 400)


def test_unknown_flow_definition(a2i):
    arn = f"{ACCOUNT_ARN}:flow-definition/{unique('nowhere')}"
    code, status, message = error(a2i.start_human_loop, HumanLoopName=unique(), FlowDefinitionArn=arn,
                                  HumanLoopInput={"InputContent": "{}"})
    assert (code, status) == ("ValidationException", 400) and arn in message


@pytest.mark.parametrize("content", ["not json", "{'single': 'quotes'}", '{"a": 1', "", "{} {}"])
def test_input_content_must_be_json(a2i, flow, content):
    code, status, _ = error(a2i.start_human_loop, HumanLoopName=unique(), FlowDefinitionArn=flow,
                            HumanLoopInput={"InputContent": content})
    assert (code, status) == ("ValidationException", 400)


def test_input_content_length_limit(a2i, flow):
    at_limit = '"' + "a" * (MAX_INPUT - 2) + '"'
    name = unique()
    a2i.start_human_loop(HumanLoopName=name, FlowDefinitionArn=flow,
                         HumanLoopInput={"InputContent": at_limit})
    assert a2i.describe_human_loop(HumanLoopName=name)["HumanLoopStatus"] == "InProgress"
    code, status, _ = error(a2i.start_human_loop, HumanLoopName=unique(), FlowDefinitionArn=flow,
                            HumanLoopInput={"InputContent": '"' + "a" * (MAX_INPUT - 1) + '"'})
    assert (code, status) == ("ValidationException", 400)


def test_input_content_limit_counts_characters(a2i, flow):
    """3,145,728 characters, not bytes: non-ASCII input at the limit is accepted."""
    name = unique()
    content = '"' + "é" * (MAX_INPUT - 2) + '"'
    a2i.start_human_loop(HumanLoopName=name, FlowDefinitionArn=flow, HumanLoopInput={"InputContent": content})
    assert a2i.describe_human_loop(HumanLoopName=name)["HumanLoopStatus"] == "InProgress"


def test_content_classifiers(stack, a2i, flow):
    code, status, _ = error(a2i.start_human_loop, HumanLoopName=unique(), FlowDefinitionArn=flow,
                            HumanLoopInput={"InputContent": "{}"},
                            DataAttributes={"ContentClassifiers": ["FreeOfViolence"]})
    assert (code, status) == ("ValidationException", 400)
    code, status, _ = error(a2i.start_human_loop, HumanLoopName=unique(), FlowDefinitionArn=flow,
                            HumanLoopInput={"InputContent": "{}"},
                            DataAttributes={"ContentClassifiers": ["FreeOfAdultContent"] * 257})
    assert (code, status) == ("ValidationException", 400)
    for attributes in ({}, {"ContentClassifiers": "FreeOfAdultContent"}, {"ContentClassifiers": [1]}):
        r = raw(stack, "POST", "/human-loops", body={"HumanLoopName": unique(), "FlowDefinitionArn": flow,
                                                     "HumanLoopInput": {"InputContent": "{}"},
                                                     "DataAttributes": attributes})
        assert_invalid(r, attributes)
    start(a2i, flow, DataAttributes={"ContentClassifiers": []})


def test_malformed_bodies(stack, flow):
    no_input = {"HumanLoopName": unique(), "FlowDefinitionArn": flow}
    not_a_string = {**no_input, "HumanLoopInput": {"InputContent": {"not": "a string"}}}
    for body in (b"not json", b"[]", json.dumps(no_input).encode(), json.dumps(not_a_string).encode()):
        assert_invalid(signed_request(stack.endpoint_url, "POST", "/human-loops", body=body, headers=JSON,
                                      service="sagemaker"), body)


def test_active_loop_quota(stack, a2i):
    flow = create_flow(stack, max_active=2)
    first, second = start(a2i, flow, content={"n": 1}), start(a2i, flow, content={"n": 2})
    code, status, _ = error(a2i.start_human_loop, HumanLoopName=unique(), FlowDefinitionArn=flow,
                            HumanLoopInput={"InputContent": "{}"})
    assert (code, status) == ("ServiceQuotaExceededException", 402)
    # retrying the start of an active loop is not a new loop
    again = a2i.start_human_loop(HumanLoopName=first, FlowDefinitionArn=flow,
                                 HumanLoopInput={"InputContent": json.dumps({"n": 1})})
    assert again["HumanLoopArn"].endswith(f"/{first}")
    a2i.stop_human_loop(HumanLoopName=second)
    wait_status(a2i, second, "Stopped")
    start(a2i, flow)  # a stopped loop no longer counts


def test_active_loop_quota_under_concurrency(stack):
    flow = create_flow(stack, max_active=1)

    def attempt(i: int) -> str:
        client = make_client("sagemaker-a2i-runtime", stack.endpoint_url)
        try:
            client.start_human_loop(HumanLoopName=unique(f"race{i}"), FlowDefinitionArn=flow,
                                    HumanLoopInput={"InputContent": "{}"})
            return "started"
        except ClientError as err:
            return err.response["Error"]["Code"]

    with ThreadPoolExecutor(6) as pool:
        outcomes = sorted(pool.map(attempt, range(6)))
    assert outcomes == ["ServiceQuotaExceededException"] * 5 + ["started"]


# --- task images -------------------------------------------------------------------------------------


def test_readable_task_image_stays_in_progress(stack, a2i, flow):
    ref = put_object(stack.data_dir / "s3", "a2i-inputs", f"{unique()}/part.png", png_bytes(96, 96, seed=1))
    name = start(a2i, flow, content={"taskObject": ref, "line": "A"})
    time.sleep(0.5)
    assert a2i.describe_human_loop(HumanLoopName=name)["HumanLoopStatus"] == "InProgress"


@pytest.mark.parametrize("case", ["missing", "text", "tiny", "huge", "not-s3"])
def test_unusable_task_image_fails_the_loop(stack, a2i, flow, case):
    root, key = stack.data_dir / "s3", f"{unique()}/part.png"
    ref = {
        "missing": "s3://a2i-inputs/does/not/exist.png",
        "text": lambda: put_object(root, "a2i-inputs", key, b"just some text, not an image"),
        "tiny": lambda: put_object(root, "a2i-inputs", key, png_bytes(32, 32)),
        "huge": lambda: put_object(root, "a2i-inputs", key, png_bytes(4097, 64)),
        "not-s3": "https://example.com/part.png",
    }[case]
    ref = ref() if callable(ref) else ref
    name = start(a2i, flow, content={"taskObject": ref})
    desc = wait_status(a2i, name, "Failed", timeout=5)
    assert desc["FailureCode"] == "ValidationError"
    assert desc["FailureReason"] and len(desc["FailureReason"]) <= 1024
    assert "HumanLoopOutput" not in desc
    summary = next(s for s in a2i.list_human_loops(FlowDefinitionArn=flow)["HumanLoopSummaries"]
                   if s["HumanLoopName"] == name)
    assert summary["HumanLoopStatus"] == "Failed" and summary["FailureReason"] == desc["FailureReason"]


# --- Describe / Stop / Delete ------------------------------------------------------------------------


def test_unknown_and_invalid_names(a2i):
    missing = unique("missing")
    for call in (a2i.describe_human_loop, a2i.stop_human_loop, a2i.delete_human_loop):
        code, status, message = error(call, HumanLoopName=missing)
        assert (code, status) == ("ResourceNotFoundException", 404) and missing in message
        code, status, _ = error(call, HumanLoopName="Not_Valid")
        assert (code, status) == ("ValidationException", 400)


def test_stop_lifecycle(a2i, flow):
    name = start(a2i, flow)
    stopped = a2i.stop_human_loop(HumanLoopName=name)
    assert stopped["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert a2i.describe_human_loop(HumanLoopName=name)["HumanLoopStatus"] in ("Stopping", "Stopped")
    a2i.stop_human_loop(HumanLoopName=name)  # again, while (probably) still Stopping
    desc = wait_status(a2i, name, "Stopped", timeout=5)
    assert not {"FailureCode", "FailureReason"} & set(desc)
    a2i.stop_human_loop(HumanLoopName=name)  # stopping a stopped loop is fine
    assert a2i.describe_human_loop(HumanLoopName=name)["HumanLoopStatus"] == "Stopped"


def test_failed_loop_cannot_be_stopped_but_deleted(a2i, flow):
    name = start(a2i, flow, content={"taskObject": "s3://a2i-inputs/nothing-here.png"})
    wait_status(a2i, name, "Failed", timeout=5)
    code, status, _ = error(a2i.stop_human_loop, HumanLoopName=name)
    assert (code, status) == ("ValidationException", 400)
    assert a2i.describe_human_loop(HumanLoopName=name)["HumanLoopStatus"] == "Failed"
    a2i.delete_human_loop(HumanLoopName=name)
    assert error(a2i.describe_human_loop, HumanLoopName=name)[:2] == ("ResourceNotFoundException", 404)


def test_delete_needs_a_stopped_loop(a2i, flow):
    name = start(a2i, flow)
    code, status, message = error(a2i.delete_human_loop, HumanLoopName=name)
    assert (code, status) == ("ValidationException", 400) and "stop" in message.lower()
    a2i.stop_human_loop(HumanLoopName=name)
    wait_status(a2i, name, "Stopped", timeout=5)
    deleted = a2i.delete_human_loop(HumanLoopName=name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert error(a2i.describe_human_loop, HumanLoopName=name)[:2] == ("ResourceNotFoundException", 404)
    assert name not in list_names(a2i, flow)
    # The identical signed delete (same second) is a replay, refused before the service sees it; a
    # delete signed in the next second is a new request, and the loop is gone.
    code, status, message = error(a2i.delete_human_loop, HumanLoopName=name)
    assert (code, status) == ("ResourceNotFoundException", 404) or \
        ((code, status) == ("AccessDeniedException", 403) and "replay" in message)
    time.sleep(1.05)
    assert error(a2i.delete_human_loop, HumanLoopName=name)[:2] == ("ResourceNotFoundException", 404)
    # the name is free again, even for other input
    start(a2i, flow, name=name, content={"second": "life"})
    assert a2i.describe_human_loop(HumanLoopName=name)["HumanLoopStatus"] == "InProgress"


def test_stopped_name_cannot_be_restarted_before_delete(a2i, flow):
    name = start(a2i, flow, content={"v": 1})
    a2i.stop_human_loop(HumanLoopName=name)
    wait_status(a2i, name, "Stopped", timeout=5)
    code, status, _ = error(a2i.start_human_loop, HumanLoopName=name, FlowDefinitionArn=flow,
                            HumanLoopInput={"InputContent": json.dumps({"v": 2})})
    assert (code, status) == ("ConflictException", 409)
    assert a2i.describe_human_loop(HumanLoopName=name)["HumanLoopStatus"] == "Stopped"


def test_loop_expires(stack, a2i):
    flow = create_flow(stack, TaskAvailabilityLifetimeInSeconds=2)
    name = start(a2i, flow)
    assert a2i.describe_human_loop(HumanLoopName=name)["HumanLoopStatus"] == "InProgress"
    desc = wait_status(a2i, name, "Failed", timeout=8)
    assert desc["FailureCode"] == "Expired" and desc["FailureReason"]
    assert (desc["CreationTime"] - datetime.now(UTC)).total_seconds() < -1.5
    [summary] = a2i.list_human_loops(FlowDefinitionArn=flow)["HumanLoopSummaries"]
    assert summary["HumanLoopStatus"] == "Failed" and summary["FailureReason"] == desc["FailureReason"]
    assert error(a2i.stop_human_loop, HumanLoopName=name)[:2] == ("ValidationException", 400)


def review(stack, flow: str, name: str, label: str) -> None:
    """A new reviewer signs in to the review page, claims the flow's next task (`name`) and answers it."""
    user, password = unique("rev"), "correct horse battery"
    r = signed_request(stack.endpoint_url, "POST", "/loupe/v1/reviewers", headers=JSON,
                       body=json.dumps({"username": user, "password": password}).encode())
    assert r.status_code == 200, r.text
    with httpx.Client(base_url=stack.endpoint_url) as page:
        signed_in = page.post("/loupe/review/api/session", json={"username": user, "password": password})
        assert signed_in.status_code == 200, signed_in.text
        claimed = page.post(f"/loupe/review/api/flows/{flow.rsplit('/', 1)[1]}/claim", json={})
        task = claimed.json()["data"]["task"]
        assert task is not None and task["human_loop_name"] == name, task
        answered = page.post(f"/loupe/review/api/tasks/{name}/answer", json={"label": label})
        assert answered.status_code == 200, answered.text


def test_completed_loop_has_output(stack, a2i):
    flow = create_flow(stack)
    ref = put_object(stack.data_dir / "s3", "a2i-inputs", f"{unique()}/part.png", png_bytes(96, 96, seed=7))
    name = start(a2i, flow, content={"taskObject": ref})
    review(stack, flow, name, "normal")
    desc = wait_status(a2i, name, "Completed", timeout=5)
    uri = desc["HumanLoopOutput"]["OutputS3Uri"]
    assert uri.startswith("s3://") and uri.endswith(f"/{name}/output.json")
    assert not {"FailureCode", "FailureReason"} & set(desc)
    [summary] = a2i.list_human_loops(FlowDefinitionArn=flow)["HumanLoopSummaries"]
    assert summary["HumanLoopStatus"] == "Completed" and "FailureReason" not in summary
    assert error(a2i.stop_human_loop, HumanLoopName=name)[:2] == ("ValidationException", 400)
    a2i.delete_human_loop(HumanLoopName=name)
    assert error(a2i.describe_human_loop, HumanLoopName=name)[:2] == ("ResourceNotFoundException", 404)


def test_answers_in_the_shape_of_the_aws_template_the_flow_imitates(stack, a2i):
    """A flow definition that imitates AWS's crowd-image-classifier template: output.json's
    answerContent is {"crowd-image-classifier": {"label": <category>}}, as AWS's Lookout + A2I
    notebook reads it; Loupe's own answer is beside it."""
    flow = create_flow(stack, AnswerFormat="crowd-image-classifier", Categories={"normal": "good", "anomaly": "bad"})
    ref = put_object(stack.data_dir / "s3", "a2i-inputs", f"{unique()}/part.png", png_bytes(96, 96, seed=8))
    name = start(a2i, flow, content={"taskObject": ref})
    review(stack, flow, name, "anomaly")
    uri = wait_status(a2i, name, "Completed", timeout=5)["HumanLoopOutput"]["OutputS3Uri"]
    output = json.loads((stack.data_dir / "s3" / uri.removeprefix("s3://")).read_text())
    [answer] = output["humanAnswers"]
    assert answer["answerContent"] == {"crowd-image-classifier": {"label": "bad"}}
    assert answer["loupeAnswerContent"] == {"anomaly": {"label": "anomaly"}}
    assert output["consolidatedAnswer"]["label"] == "anomaly"
    bad = signed_request(stack.endpoint_url, "POST", "/loupe/v1/flow-definitions", headers=JSON, body=json.dumps({
        "FlowDefinitionName": unique("flow"), "HumanLoopConfig": {"TaskTitle": "T", "TaskDescription": "D",
                                                                   "AnswerFormat": "crowd-bounding-box"}}).encode())
    assert bad.status_code == 400 and "answerformat" in bad.text.lower() and "crowd-image-classifier" in bad.text, bad.text


# --- ListHumanLoops ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def timeline(stack, a2i):
    """A flow with three loops and client-side marks between them: m0 < l1 < m1 < l2 < m2 < l3 < m3."""
    flow = create_flow(stack)
    marks, loops = [datetime.now(UTC)], []
    for i in range(3):
        time.sleep(0.03)
        loops.append(start(a2i, flow, name=unique(f"t{i}")))
        time.sleep(0.03)
        marks.append(datetime.now(UTC))
    return flow, loops, marks


def test_list_summaries(a2i, timeline):
    flow, loops, marks = timeline
    page = a2i.list_human_loops(FlowDefinitionArn=flow)
    assert page["ResponseMetadata"]["HTTPStatusCode"] == 200 and "NextToken" not in page
    assert names(page["HumanLoopSummaries"]) == loops[::-1]  # default: Descending, newest first
    for summary, mark in zip(page["HumanLoopSummaries"][::-1], marks, strict=False):
        assert summary["FlowDefinitionArn"] == flow and summary["HumanLoopStatus"] == "InProgress"
        assert summary["CreationTime"] > mark and "FailureReason" not in summary


def test_list_sort_order(a2i, timeline):
    flow, loops, _ = timeline
    assert list_names(a2i, flow, SortOrder="Descending") == loops[::-1]
    assert list_names(a2i, flow, SortOrder="Ascending") == loops


def test_list_creation_time_filters(a2i, timeline):
    flow, loops, m = timeline
    assert list_names(a2i, flow, CreationTimeAfter=m[1]) == [loops[2], loops[1]]
    assert list_names(a2i, flow, CreationTimeBefore=m[2]) == [loops[1], loops[0]]
    assert list_names(a2i, flow, CreationTimeAfter=m[1], CreationTimeBefore=m[2]) == [loops[1]]
    assert list_names(a2i, flow, CreationTimeAfter=m[1], SortOrder="Ascending") == [loops[1], loops[2]]
    assert list_names(a2i, flow, CreationTimeAfter=m[3]) == []
    assert list_names(a2i, flow, CreationTimeBefore=m[0]) == []
    assert list_names(a2i, flow, CreationTimeAfter=m[2], CreationTimeBefore=m[1]) == []


def test_list_creation_time_strings(stack, timeline):
    flow, loops, m = timeline
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert raw_list_names(stack, flow, CreationTimeAfter="2020-02-24") == loops[::-1]
    assert raw_list_names(stack, flow, CreationTimeBefore="2020-02-24") == []
    assert raw_list_names(stack, flow, CreationTimeBefore=tomorrow) == loops[::-1]
    assert raw_list_names(stack, flow, CreationTimeAfter=tomorrow) == []
    assert raw_list_names(stack, flow, CreationTimeAfter="2020-02-24T10:00:00Z", CreationTimeBefore=tomorrow,
                          SortOrder="Ascending") == loops
    plus_two = m[1].astimezone(timezone(timedelta(hours=2))).isoformat()  # the same instant, another offset
    assert raw_list_names(stack, flow, CreationTimeAfter=plus_two) == [loops[2], loops[1]]
    for bad in ("yesterday", "2020-13-45", "1700000000x", "2020-02-24T25:00:00Z"):
        r = raw(stack, "GET", "/human-loops", {"FlowDefinitionArn": flow, "CreationTimeAfter": bad})
        assert_invalid(r, bad)


def test_list_needs_a_known_flow(stack, a2i):
    with pytest.raises(ParamValidationError):  # boto3 itself refuses to send it
        a2i.list_human_loops()
    r = raw(stack, "GET", "/human-loops")
    assert_invalid(r)
    assert "flowdefinitionarn" in r.json()["Message"].lower()
    unknown = f"{ACCOUNT_ARN}:flow-definition/{unique('nowhere')}"
    code, status, _ = error(a2i.list_human_loops, FlowDefinitionArn=unknown)
    assert (code, status) == ("ResourceNotFoundException", 404)
    code, status, _ = error(a2i.list_human_loops, FlowDefinitionArn="arn:aws:sagemaker:nope")
    assert (code, status) == ("ValidationException", 400)


def test_list_parameter_bounds(stack, a2i, timeline):
    flow = timeline[0]
    assert len(a2i.list_human_loops(FlowDefinitionArn=flow, MaxResults=1)["HumanLoopSummaries"]) == 1
    assert len(a2i.list_human_loops(FlowDefinitionArn=flow, MaxResults=100)["HumanLoopSummaries"]) == 3
    for query in ({"MaxResults": "0"}, {"MaxResults": "101"}, {"MaxResults": "-1"}, {"MaxResults": "ten"},
                  {"SortOrder": "Sideways"}, {"SortOrder": "ascending"}, {"NextToken": "x" * 8193}):
        r = raw(stack, "GET", "/human-loops", {"FlowDefinitionArn": flow, **query})
        assert_invalid(r, query)


@pytest.fixture(scope="module")
def five(stack, a2i):
    flow = create_flow(stack)
    loops = []
    for i in range(5):
        loops.append(start(a2i, flow, name=unique(f"p{i}")))
        time.sleep(0.01)  # distinct creation times, so a time between two loops exists
    return flow, loops


def walk(a2i, flow: str, **kwargs) -> list[list[str]]:
    pages, token = [], None
    while True:
        more = {"NextToken": token} if token else {}
        page = a2i.list_human_loops(FlowDefinitionArn=flow, MaxResults=2, **kwargs, **more)
        pages.append(names(page["HumanLoopSummaries"]))
        token = page.get("NextToken")
        if token is None:
            return pages
        assert len(token) <= 8192


@pytest.mark.parametrize("order", ["Ascending", "Descending"])
def test_pagination(a2i, five, order):
    flow, loops = five
    pages = walk(a2i, flow, SortOrder=order)
    expected = loops if order == "Ascending" else loops[::-1]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [n for p in pages for n in p] == expected


def test_pagination_with_time_filter(a2i, five):
    flow, loops = five
    second, third = (a2i.describe_human_loop(HumanLoopName=n)["CreationTime"] for n in loops[1:3])
    between = second + (third - second) / 2
    pages = walk(a2i, flow, CreationTimeAfter=between, SortOrder="Ascending")
    assert [n for p in pages for n in p] == loops[2:] and [len(p) for p in pages] == [2, 1]
    pages = walk(a2i, flow, CreationTimeBefore=between)
    assert [n for p in pages for n in p] == loops[1::-1] and [len(p) for p in pages] == [2]


def test_paginator(a2i, five):
    flow, loops = five
    paginator = a2i.get_paginator("list_human_loops")
    for order, expected in (("Ascending", loops), ("Descending", loops[::-1])):
        pages = list(paginator.paginate(FlowDefinitionArn=flow, SortOrder=order,
                                        PaginationConfig={"PageSize": 2}))
        assert [len(p["HumanLoopSummaries"]) for p in pages] == [2, 2, 1]
        assert [n for p in pages for n in names(p["HumanLoopSummaries"])] == expected
    limited = paginator.paginate(FlowDefinitionArn=flow,
                                 PaginationConfig={"PageSize": 1, "MaxItems": 3}).build_full_result()
    assert names(limited["HumanLoopSummaries"]) == loops[::-1][:3] and limited["NextToken"]


def test_pagination_survives_deletion(stack, a2i):
    flow = create_flow(stack)
    loops = [start(a2i, flow, name=unique(f"d{i}")) for i in range(4)]
    first = a2i.list_human_loops(FlowDefinitionArn=flow, MaxResults=2, SortOrder="Ascending")
    assert names(first["HumanLoopSummaries"]) == loops[:2]
    a2i.stop_human_loop(HumanLoopName=loops[1])  # the loop the token points after
    wait_status(a2i, loops[1], "Stopped", timeout=5)
    a2i.delete_human_loop(HumanLoopName=loops[1])
    rest = a2i.list_human_loops(FlowDefinitionArn=flow, MaxResults=2, SortOrder="Ascending",
                                NextToken=first["NextToken"])
    assert names(rest["HumanLoopSummaries"]) == loops[2:] and "NextToken" not in rest


def test_bad_next_tokens(stack, a2i, five):
    flow, _ = five
    token = a2i.list_human_loops(FlowDefinitionArn=flow, MaxResults=2)["NextToken"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in ("garbage", "!!!", forged):
        code, status, _ = error(a2i.list_human_loops, FlowDefinitionArn=flow, MaxResults=2, NextToken=bad)
        assert (code, status) == ("ValidationException", 400), bad
    # a token belongs to its query: another sort order or flow does not take it
    code, status, _ = error(a2i.list_human_loops, FlowDefinitionArn=flow, MaxResults=2, NextToken=token,
                            SortOrder="Ascending")
    assert (code, status) == ("ValidationException", 400)
    other = create_flow(stack)
    code, status, _ = error(a2i.list_human_loops, FlowDefinitionArn=other, NextToken=token)
    assert (code, status) == ("ValidationException", 400)


# --- errors and authentication -------------------------------------------------------------------------


def test_error_shape(stack):
    missing = unique("missing")
    r = raw(stack, "GET", f"/human-loops/{missing}")
    assert r.status_code == 404
    assert r.headers["X-Amzn-ErrorType"].split(":")[0] == "ResourceNotFoundException"
    assert r.headers.get("x-amzn-RequestId")
    assert missing in r.json()["Message"]


def test_access_denied(stack, flow):
    path = f"/human-loops/{unique()}"
    for r in (raw(stack, "GET", path, service="lookoutvision"),  # signed for another service
              httpx.get(stack.endpoint_url + path),  # not signed at all
              raw(stack, "GET", path, secret="not-the-secret"),
              raw(stack, "POST", "/human-loops", body={"HumanLoopName": unique(), "FlowDefinitionArn": flow,
                                                       "HumanLoopInput": {"InputContent": "{}"}},
                  service="lookoutvision")):
        assert r.status_code == 403, r.text
        assert r.headers["X-Amzn-ErrorType"].split(":")[0] == "AccessDeniedException"
    client = make_client("sagemaker-a2i-runtime", stack.endpoint_url, secret="not-the-secret")
    code, status, _ = error(client.describe_human_loop, HumanLoopName=unique())
    assert (code, status) == ("AccessDeniedException", 403)
