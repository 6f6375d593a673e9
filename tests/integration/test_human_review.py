"""Human review end to end, against the real stack: a hosted model and a flow definition with a
confidence condition; a doubtful DetectAnomalies result starts a loop; a reviewer signs in to the
review page in headless Chromium (Playwright driving Debian's chromium), sees the image and the
heatmap, paints the defect and answers; the loop completes, output.json has A2I's shape, and the
image is an entry of the project's dataset. A second test has three reviewers split their vote."""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
import uuid
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from PIL import Image

from helpers import make_client, pattern_png, put_object, signed_request, train_and_host, wait_dataset, wait_model

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "review-pass-123"
ACCOUNT = "123456789012"


def native(stack, method: str, path: str, body: dict | None = None) -> dict:
    r = signed_request(stack.endpoint_url, method, path, body=json.dumps(body).encode() if body else b"",
                       headers={"Content-Type": "application/json"} if body else {})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def blend(alpha: float, seed: int = 7000) -> bytes:
    """A normal pattern faded towards its defective twin: small alphas are the doubtful cases."""
    normal = Image.open(io.BytesIO(pattern_png(seed))).convert("RGB")
    defect = Image.open(io.BytesIO(pattern_png(seed, defect=True))).convert("RGB")
    out = io.BytesIO()
    Image.blend(normal, defect, alpha).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def a2i(stack):
    return make_client("sagemaker-a2i-runtime", stack.endpoint_url)


@pytest.fixture(scope="module")
def hosted(lookout, stack):
    project = "reviewed-model"
    train_and_host(lookout, stack.data_dir / "s3", project)
    yield project
    lookout.stop_model(ProjectName=project, ModelVersion="1")


def reviewer(stack, name: str) -> httpx.Client:
    native(stack, "POST", "/loupe/v1/reviewers", {"username": name, "password": PASSWORD})
    client = httpx.Client(base_url=stack.endpoint_url)
    signed = client.post("/loupe/review/api/session", json={"username": name, "password": PASSWORD})
    assert signed.status_code == 200, signed.text
    return client


def started_loop(a2i, name: str, timeout: float = 10) -> dict:
    """DescribeHumanLoop once the loop exists: an activated loop is named in the result before the
    human-loop service has taken the worker's StartHumanLoop."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return a2i.describe_human_loop(HumanLoopName=name)
        except a2i.exceptions.ResourceNotFoundException:
            assert time.monotonic() < deadline
            time.sleep(0.2)


def detect_until_reviewed(lookout, project: str, image: bytes, timeout: float = 15) -> dict:
    """Detect until the workers have the new flow definition's conditions (sent within a second)."""
    deadline = time.monotonic() + timeout
    while True:
        response = lookout.detect_anomalies(ProjectName=project, ModelVersion="1", Body=image, ContentType="image/png")
        headers = response["ResponseMetadata"]["HTTPHeaders"]
        if "x-loupe-human-loop-name" in headers:
            return response
        assert time.monotonic() < deadline, "no human loop started"
        time.sleep(0.3)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (make test installs it as root)")
def test_doubtful_detection_is_reviewed_in_the_browser(stack, lookout, a2i, hosted, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    project = hosted
    # The doubtful image: of a few fades the model calls anomalous, the one it is least sure about
    # (anomalous, so the loop also carries the model's mask).
    candidates = {alpha: blend(alpha) for alpha in (0.0, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)}
    confidence = {}
    for alpha, image in candidates.items():
        r = signed_request(stack.endpoint_url, "POST", f"/loupe/v1/projects/{project}/models/1/detect",
                           body=image, headers={"Content-Type": "image/png"})
        result = r.json()["data"]["DetectAnomalyResult"]
        if result["IsAnomalous"]:
            confidence[alpha] = result["Confidence"]
    assert confidence, "no fade of the defect was called anomalous"
    doubtful = min(confidence, key=confidence.get)
    clear = pattern_png(7100, defect=True)  # a plain defect: the model is sure
    below = confidence[doubtful] + 0.01
    assert below < 0.99, confidence

    flow = f"doubt-{uuid.uuid4().hex[:8]}"
    native(stack, "POST", "/loupe/v1/flow-definitions", {
        "FlowDefinitionName": flow,
        "HumanLoopConfig": {"TaskTitle": "Is this part defective?", "TaskDescription": "Mark scratches and dents.",
                            "TaskCount": 1, "TaskTimeLimitInSeconds": 120, "DefectBrush": True},
        "HumanLoopActivationConfig": {"ProjectName": project, "HumanLoopActivationConditions": {
            "Conditions": [{"ConditionType": "ConfidenceCheck", "ConditionParameters": {"ConfidenceLessThan": below}}]}},
        "DatasetFeedback": {"DatasetType": "train", "RetrainAfter": 1},
    })
    started = detect_until_reviewed(lookout, project, candidates[doubtful])
    loop = started["ResponseMetadata"]["HTTPHeaders"]["x-loupe-human-loop-name"]
    sure = lookout.detect_anomalies(ProjectName=project, ModelVersion="1", Body=clear, ContentType="image/png")
    assert sure["DetectAnomalyResult"]["Confidence"] > below
    assert "x-loupe-human-loop-name" not in sure["ResponseMetadata"]["HTTPHeaders"]
    described = started_loop(a2i, loop)
    assert described["HumanLoopStatus"] == "InProgress"
    assert described["FlowDefinitionArn"].endswith(f":flow-definition/{flow}")

    native(stack, "POST", "/loupe/v1/reviewers", {"username": "rita", "password": PASSWORD})
    screenshot = Path(os.environ.get("LOUPE_SCREENSHOT_DIR", tmp_path)) / "review-page.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(stack.endpoint_url + "/loupe/review")
        page.fill("#username", "rita")
        page.fill("#password", "wrong-password")
        page.click("#sign-in")
        expect(page.locator("#message")).to_contain_text("Wrong user name or password")
        page.fill("#password", PASSWORD)
        page.click("#sign-in")
        page.click(f".flow[data-flow='{flow}']")
        expect(page.locator("#task")).to_be_visible()
        page.wait_for_function("() => document.querySelector('#task-image').naturalWidth > 0 && "
                               "document.querySelector('#heatmap').naturalWidth > 0")
        assert page.eval_on_selector("#task-image", "img => [img.naturalWidth, img.naturalHeight]") == [160, 160]
        expect(page.locator("#prediction")).to_have_text(
            "Anomaly" if started["DetectAnomalyResult"]["IsAnomalous"] else "Normal")
        expect(page.locator("#confidence")).to_contain_text("%")
        expect(page.locator("#heatmap")).to_be_visible()
        page.keyboard.press("h")
        expect(page.locator("#heatmap")).to_be_hidden()
        page.keyboard.press("h")
        expect(page.locator("#heatmap")).to_be_visible()
        page.keyboard.press("b")  # the brush: paint a stroke across the middle of the image
        box = page.locator("#brush-canvas").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.55, steps=8)
        page.mouse.up()
        page.screenshot(path=str(screenshot))
        page.keyboard.press("a")
        expect(page.locator("#no-tasks")).to_be_visible()
        browser.close()
    assert screenshot.stat().st_size > 10_000

    assert a2i.describe_human_loop(HumanLoopName=loop)["HumanLoopStatus"] == "Completed"
    found = native(stack, "GET", f"/loupe/v1/human-loops/{loop}/output")
    output = found["Output"]
    assert output["humanLoopName"] == loop and output["flowDefinitionArn"] == described["FlowDefinitionArn"]
    assert output["inputContent"]["prediction"]["Confidence"] == started["DetectAnomalyResult"]["Confidence"]
    [answer] = output["humanAnswers"]
    assert answer["workerId"] == "rita" and answer["answerContent"]["anomaly"]["label"] == "anomaly"
    assert answer["timeSpentInSeconds"] > 0 and answer["submissionTime"] >= answer["acceptanceTime"]
    assert answer["answerContent"]["anomaly"]["maskS3Uri"].endswith("rita-mask.png")
    assert output["consolidatedAnswer"]["label"] == "anomaly" and output["consolidatedAnswer"]["agreement"] == 1.0
    assert described_output_uri(a2i, loop) == found["OutputS3Uri"]
    folder = found["OutputS3Uri"].rsplit("/", 1)[0]
    assert output["taskFiles"] == {"image": f"{folder}/task/image", "heatmap": f"{folder}/task/heatmap.png",
                                   "mask": f"{folder}/task/model-mask.png"}
    copied = stack.data_dir / "s3" / output["taskFiles"]["image"].removeprefix("s3://")
    assert copied.read_bytes() == candidates[doubtful]

    # The answer became a labelled entry of the train dataset, with the painted mask.
    deadline = time.monotonic() + 30
    # Wait for a final state: `pending` (not picked up yet) and `adding` (being added) both pass.
    while (feedback := native(stack, "GET", f"/loupe/v1/human-loops/{loop}/output")["Feedback"])["state"] \
            not in ("added", "failed"):
        assert time.monotonic() < deadline, feedback
        time.sleep(0.3)
    assert feedback["state"] == "added", feedback
    assert wait_dataset(lookout, project, "train")["Status"] == "UPDATE_COMPLETE"
    entries = [json.loads(e) for e in lookout.list_dataset_entries(ProjectName=project, DatasetType="train",
                                                                    SourceRefContains=feedback["source_ref"].rsplit("/", 1)[1])["DatasetEntries"]]
    [entry] = entries
    assert entry["anomaly-label"] == 1 and entry["anomaly-label-metadata"]["human-annotated"] == "yes"
    assert entry["anomaly-mask-ref"].startswith("s3://")
    # RetrainAfter 1: the answer started a training run, which took the waiting image with it.
    deadline = time.monotonic() + 30  # once the dataset has applied the answer
    while "2" not in (versions := {m["ModelVersion"]: m for m in lookout.list_models(ProjectName=project)["Models"]}):
        assert time.monotonic() < deadline, versions
        time.sleep(0.5)
    assert lookout.describe_model(ProjectName=project, ModelVersion="2")["ModelDescription"]["Description"] == \
        "Retrained-after-human-review"
    assert wait_model(lookout, project, "2")["Status"] == "TRAINED"
    reviewed = native(stack, "GET", f"/loupe/v1/projects/{project}/reviewed-images")
    assert reviewed["added_total"] == 1 and reviewed["waiting_for_training"] == 0


def described_output_uri(a2i, loop: str) -> str:
    return a2i.describe_human_loop(HumanLoopName=loop)["HumanLoopOutput"]["OutputS3Uri"]


def test_three_reviewers_split_vote_goes_to_the_majority(stack, a2i, bucket_root):
    flow = f"vote-{uuid.uuid4().hex[:8]}"
    arn = native(stack, "POST", "/loupe/v1/flow-definitions", {
        "FlowDefinitionName": flow,
        "HumanLoopConfig": {"TaskTitle": "Vote", "TaskDescription": "Normal or anomaly?", "TaskCount": 3}})["FlowDefinitionArn"]
    image = put_object(bucket_root, "review-inputs", f"{flow}/part.png", pattern_png(42))
    loop = f"{flow}-loop"
    a2i.start_human_loop(HumanLoopName=loop, FlowDefinitionArn=arn,
                         HumanLoopInput={"InputContent": json.dumps({"taskObject": image})})
    people = [reviewer(stack, f"{flow}-{who}") for who in ("ann", "ben", "cat")]
    tasks = [p.post(f"/loupe/review/api/flows/{flow}/claim", json={}).json()["data"]["task"] for p in people]
    assert [t["human_loop_name"] for t in tasks] == [loop] * 3  # three slots: each reviewer holds one
    assert people[0].get(tasks[0]["files"]["image"]).content == (bucket_root / "review-inputs" / flow / "part.png").read_bytes()
    outsider = reviewer(stack, f"{flow}-dan")
    assert outsider.post(f"/loupe/review/api/flows/{flow}/claim", json={}).json()["data"]["task"] is None

    for person, label in zip(people, ("anomaly", "normal", "anomaly")):
        assert a2i.describe_human_loop(HumanLoopName=loop)["HumanLoopStatus"] == "InProgress"
        done = person.post(f"/loupe/review/api/tasks/{loop}/answer", json={"label": label})
        assert done.status_code == 200, done.text
    assert done.json()["data"] == {"human_loop_status": "Completed", "answers": 3, "task_count": 3}
    again = people[0].post(f"/loupe/review/api/tasks/{loop}/answer", json={"label": "normal"})
    assert again.status_code == 409 and again.json()["error_detail"]["code"] == "ERROR_RESOURCE_IN_USE"

    output = native(stack, "GET", f"/loupe/v1/human-loops/{loop}/output")["Output"]
    assert [a["workerId"] for a in output["humanAnswers"]] == [f"{flow}-ann", f"{flow}-ben", f"{flow}-cat"]
    assert output["consolidatedAnswer"] == {"label": "anomaly", "agreement": pytest.approx(0.6667, abs=1e-4),
                                            "votes": {"anomaly": 2, "normal": 1}, "tie": False}
    assert output["inputContent"] == {"taskObject": image}
    events = asyncio.run(loop_events(stack, loop))
    assert [(e["PreviousStatus"], e["HumanLoopStatus"]) for e in events] == [(None, "InProgress"), ("InProgress", "Completed")]
    assert all(e["HumanLoopArn"].endswith(f"human-loop/{loop}") for e in events)


async def loop_events(stack, loop: str) -> list[dict]:
    """Every event of one loop on loupe.humanloop.events (keyed by loop name: one partition, in order)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - first use of the topic here
        partitions = [TopicPartition("loupe.humanloop.events", p)
                      for p in consumer.partitions_for_topic("loupe.humanloop.events") or ()]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)
        found: list[dict] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found += [json.loads(r.value)["data"] for r in records]
        return [e for e in found if e["HumanLoopName"] == loop]
    finally:
        await consumer.stop()


def test_reviewer_page_needs_a_session(stack):
    anonymous = httpx.Client(base_url=stack.endpoint_url)
    for method, path in (("GET", "/loupe/review/api/queue"), ("POST", "/loupe/review/api/flows/any/claim")):
        r = anonymous.request(method, path, json={})
        assert r.status_code == 401 and r.json()["error_detail"]["code"] == "ERROR_USER_NOT_EXISTS"
    forged = httpx.Client(base_url=stack.endpoint_url, cookies={"loupe_review": "x" * 43})
    assert forged.get("/loupe/review/api/queue").status_code == 401
    page = anonymous.get("/loupe/review")
    assert page.status_code == 200 and "<title>Loupe review</title>" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    unsigned = anonymous.post("/loupe/v1/reviewers", json={"username": "mallory", "password": PASSWORD})
    assert unsigned.status_code == 403


def test_ingest_results_name_their_human_loop(stack, a2i, hosted):
    flow = f"every-{uuid.uuid4().hex[:8]}"
    native(stack, "POST", "/loupe/v1/flow-definitions", {
        "FlowDefinitionName": flow,
        "HumanLoopConfig": {"TaskTitle": "Sample", "TaskDescription": "A random sample of the line"},
        "HumanLoopActivationConfig": {"ProjectName": hosted, "ModelVersion": "1", "HumanLoopActivationConditions": {
            "Conditions": [{"Or": [{"ConditionType": "Sampling", "ConditionParameters": {"RandomSamplingPercentage": 100}},
                                   {"ConditionType": "PredictedNormal"}]}]}}})

    async def send_and_read() -> list[dict]:
        producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
        consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, enable_auto_commit=False)
        await producer.start()
        await consumer.start()
        try:
            await asyncio.sleep(1.5)  # the activation table reaches the workers within a second
            sent = await producer.send_and_wait("loupe.ingest", pattern_png(7300), headers=[
                ("loupe-project", hosted.encode()), ("loupe-model-version", b"1"),
                ("content-type", b"image/png"), ("loupe-image-id", b"sampled-1")])
            tp = TopicPartition("loupe.ingest.results", sent.partition)
            consumer.assign([tp])
            consumer.seek(tp, 0)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found = [json.loads(r.value) for r in records]
                    mine = [b for b in found if b["source"]["offset"] == sent.offset and b["source"]["topic"] == "loupe.ingest"]
                    if mine:
                        return mine
            return []
        finally:
            await producer.stop()
            await consumer.stop()

    [result] = asyncio.run(send_and_read())
    assert result["error_code"] == 0, result
    activation = result["data"]["HumanLoopActivationOutput"]
    assert activation["HumanLoopActivationReasons"][0] == "Sampling"
    assert activation["HumanLoopArn"] == f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:human-loop/{activation['HumanLoopName']}"
    described = started_loop(a2i, activation["HumanLoopName"])
    assert described["FlowDefinitionArn"].endswith(f"flow-definition/{flow}")
    # Stop it so it does not linger in the shared stack's queue.
    a2i.stop_human_loop(HumanLoopName=activation["HumanLoopName"])



def test_loupe_reviewer_commands(stack, monkeypatch):
    from typer.testing import CliRunner

    from loupe_cli.main import app

    monkeypatch.setenv("LOUPE_ENDPOINT_URL", stack.endpoint_url)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    runner = CliRunner()
    added = runner.invoke(app, ["reviewer", "add", "quinn"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert added.exit_code == 0, added.output
    signed = httpx.post(stack.endpoint_url + "/loupe/review/api/session", json={"username": "quinn", "password": PASSWORD})
    assert signed.status_code == 200 and "loupe_review" in signed.cookies
    assert "quinn" in runner.invoke(app, ["reviewer", "list"]).output
    # The same signed request within the same second would be refused as a replay (replay_guard);
    # the next second gives it a new X-Amz-Date, so the service itself answers.
    time.sleep(1.05)
    again = runner.invoke(app, ["reviewer", "add", "quinn"], env={"LOUPE_REVIEWER_PASSWORD": PASSWORD})
    assert again.exit_code == 1 and "already exists" in again.output
    assert runner.invoke(app, ["reviewer", "remove", "quinn"]).exit_code == 0
    gone = httpx.post(stack.endpoint_url + "/loupe/review/api/session", json={"username": "quinn", "password": PASSWORD})
    assert gone.status_code == 401


def test_an_activated_loop_that_cannot_start_fails_visibly(stack, a2i):
    """A worker names the loop in its result before the service takes the StartHumanLoop; when the
    service refuses it (here: the flow's quota of active loops), the loop exists as Failed."""
    from loupe_common.human_loop_messages import LoopOrigin, StartHumanLoop

    flow = f"full-{uuid.uuid4().hex[:8]}"
    arn = native(stack, "POST", "/loupe/v1/flow-definitions", {
        "FlowDefinitionName": flow, "MaxActiveHumanLoops": 1,
        "HumanLoopConfig": {"TaskTitle": "Full", "TaskDescription": "One at a time"}})["FlowDefinitionArn"]
    a2i.start_human_loop(HumanLoopName=f"{flow}-first", FlowDefinitionArn=arn, HumanLoopInput={"InputContent": "{}"})
    with pytest.raises(a2i.exceptions.ServiceQuotaExceededException):
        a2i.start_human_loop(HumanLoopName=f"{flow}-second", FlowDefinitionArn=arn, HumanLoopInput={"InputContent": "{}"})
    name = f"{flow}-activated"
    command = StartHumanLoop(request_id="req-1", human_loop_name=name, flow_definition_arn=arn, input_content="{}",
                             origin=LoopOrigin(project_name="p", model_version="1", request_id="req-1",
                                               image_key=f"human-loops/{name}/image", content_type="image/png",
                                               width=64, height=64))

    async def publish() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait("loupe.humanloop.commands", command.model_dump_json().encode(), key=name.encode())
        finally:
            await producer.stop()

    asyncio.run(publish())
    described = started_loop(a2i, name)
    assert described["HumanLoopStatus"] == "Failed" and described["FailureCode"] == "InternalError"
    assert "limit is 1" in described["FailureReason"]
    a2i.stop_human_loop(HumanLoopName=f"{flow}-first")


def test_flow_definition_routes(stack, a2i):
    def call(method: str, path: str, body: dict | None = None) -> httpx.Response:
        return signed_request(stack.endpoint_url, method, path, body=json.dumps(body).encode() if body else b"",
                              headers={"Content-Type": "application/json"} if body else {})

    flow = f"routes-{uuid.uuid4().hex[:8]}"
    spec = {"FlowDefinitionName": flow, "HumanLoopConfig": {"TaskTitle": "T", "TaskDescription": "D", "TaskCount": 4}}
    bad = call("POST", "/loupe/v1/flow-definitions", spec)
    assert bad.status_code == 400 and bad.json()["error_detail"]["code"] == "ERROR_INVALID_PARAMETER"
    assert "'humanLoopConfig.taskCount'" in bad.json()["error_detail"]["message"]
    spec["HumanLoopConfig"]["TaskCount"] = 2
    created = call("POST", "/loupe/v1/flow-definitions", spec).json()["data"]
    assert created["OutputConfig"] == {"S3OutputPath": "s3://loupe-human-loops"}
    assert call("POST", "/loupe/v1/flow-definitions", spec).status_code == 200  # the same again: idempotent
    spec["HumanLoopConfig"]["TaskTitle"] = "Other"
    assert call("POST", "/loupe/v1/flow-definitions", spec).status_code == 409
    a2i.start_human_loop(HumanLoopName=f"{flow}-1", FlowDefinitionArn=created["FlowDefinitionArn"],
                         HumanLoopInput={"InputContent": "{}"})
    described = call("GET", f"/loupe/v1/flow-definitions/{flow}").json()["data"]
    assert described["HumanLoopCounts"]["InProgress"] == 1
    assert flow in [f["FlowDefinitionName"] for f in call("GET", "/loupe/v1/flow-definitions").json()["data"]["FlowDefinitions"]]
    busy = call("DELETE", f"/loupe/v1/flow-definitions/{flow}")
    assert busy.status_code == 409 and busy.json()["error_detail"]["code"] == "ERROR_RESOURCE_IN_USE"
    a2i.stop_human_loop(HumanLoopName=f"{flow}-1")
    deadline = time.monotonic() + 10
    while a2i.describe_human_loop(HumanLoopName=f"{flow}-1")["HumanLoopStatus"] != "Stopped":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert call("DELETE", f"/loupe/v1/flow-definitions/{flow}").status_code == 200
    assert call("GET", f"/loupe/v1/flow-definitions/{flow}").status_code == 404
