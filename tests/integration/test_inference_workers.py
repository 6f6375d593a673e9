"""The ingest topic and inference workers on the real broker: one result per image, a worker killed
mid-stream (zero images lost, zero results duplicated), a worker started mid-stream taking
partitions, and DetectAnomalies surviving the death of one of two inference units."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import IngestStream as Stream
from helpers import ingest_headers, make_client, pattern_png, signed_request, train_and_host, wait_status

PROJECT = "ingest-model"


@pytest.fixture(scope="module")
def hosted(lookout, stack):
    train_and_host(lookout, stack.data_dir / "s3", PROJECT, test_normal=4, test_anomalous=4)
    yield PROJECT
    lookout.stop_model(ProjectName=PROJECT, ModelVersion="1")
    wait_status(lookout, PROJECT, "1", "TRAINED")


def headers_for(image_id: str, version: str = "1", content_type: str = "image/png") -> list[tuple[str, bytes]]:
    return ingest_headers(PROJECT, image_id, version, content_type)


def test_every_image_gets_exactly_one_result(stack, hosted):
    async def run() -> Stream:
        async with Stream(stack.kafka_bootstrap) as stream:
            for i in range(6):
                await stream.send(f"normal-{i}", pattern_png(7000 + i), headers_for(f"normal-{i}"))
                await stream.send(f"defect-{i}", pattern_png(7500 + i, defect=True), headers_for(f"defect-{i}"))
            good = pattern_png(7100)
            await stream.send("corrupt", good[: len(good) // 3], headers_for("corrupt"))
            await stream.send("gif", b"GIF89a" + b"\0" * 200, headers_for("gif", content_type="image/gif"))
            await stream.send("not-hosted", good, headers_for("not-hosted", version="9"))
            await stream.send("garbage", b"\x00\x01 not json", None)
            envelope = {"project": PROJECT, "model_version": "1", "image_id": "as-json",
                        "image": base64.b64encode(pattern_png(7200)).decode()}
            await stream.send("as-json", json.dumps(envelope).encode(), [("content-type", b"application/json")])
            # file:// references: read inside LOUPE_FILE_REF_ROOTS only; outside, an existing file and a
            # missing one get the same answer (the finding: the errors told which host files exist).
            inside = stack.data_dir / "ingest-ref.png"
            inside.write_bytes(pattern_png(7300))
            for image_id, path in (("ref-inside", inside.resolve()), ("ref-exists", "/etc/hostname"),
                                   ("ref-missing", "/etc/no-such-file.png")):
                ref = {"project": PROJECT, "model_version": "1", "image_id": image_id,
                       "content_type": "image/png", "image_ref": f"file://{path}"}
                await stream.send(image_id, json.dumps(ref).encode(), [("content-type", b"application/json")])
            await stream.collect(timeout=90)
            return stream

    stream = asyncio.run(run())
    assert set(stream.results) == set(stream.sent)
    assert all(len(r) == 1 for r in stream.results.values())
    for i in range(6):
        normal, defect = stream.outcome(f"normal-{i}"), stream.outcome(f"defect-{i}")
        assert normal["error_code"] == 0 and normal["data"]["DetectAnomalyResult"]["IsAnomalous"] is False
        assert defect["error_code"] == 0 and defect["data"]["DetectAnomalyResult"]["IsAnomalous"] is True
        # A classification model (its datasets have no masks): no Anomalies, no AnomalyMask, as in Lookout.
        assert set(defect["data"]["DetectAnomalyResult"]) == {"Source", "IsAnomalous", "Confidence"}
        assert normal["image_id"] == f"normal-{i}" and normal["project"] == PROJECT
    assert stream.outcome("as-json")["data"]["DetectAnomalyResult"]["IsAnomalous"] is False
    expected = {"corrupt": ("FILE_DECODING_FAILURE", 400), "gif": ("UNSUPPORTED_FILE_TYPES", 415),
                "not-hosted": ("ERROR_RESOURCE_NOT_FOUND", 404), "garbage": ("ERROR_PARAMETERS", 400)}
    for image_id, (code, status) in expected.items():
        result = stream.outcome(image_id)
        assert result["error_detail"]["code"] == code, result
        assert result["error_code"] == status and result["error_detail"]["message"]
    assert stream.outcome("ref-inside")["data"]["DetectAnomalyResult"]["IsAnomalous"] is False
    exists, missing = stream.outcome("ref-exists"), stream.outcome("ref-missing")
    assert exists["error_detail"]["code"] == missing["error_detail"]["code"] == "ERROR_PARAMETERS", exists
    assert exists["error_detail"]["message"].replace("/etc/hostname", "P") == \
        missing["error_detail"]["message"].replace("/etc/no-such-file.png", "P")
    ids = [r[0]["request_id"] for r in stream.results.values()]
    assert len(set(ids)) == len(ids)


def test_loupe_ingest_command(stack, hosted, tmp_path):
    folder = tmp_path / "incoming"
    (folder / "line-1").mkdir(parents=True)
    for i in range(3):
        (folder / "line-1" / f"ok-{i}.png").write_bytes(pattern_png(7600 + i))
    (folder / "scratch.png").write_bytes(pattern_png(7700, defect=True))
    (folder / "broken.png").write_bytes(pattern_png(7800)[:300])
    out = tmp_path / "results.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "loupe_cli", "ingest", str(folder), "--project", hosted, "--model", "1",
         "--bootstrap", stack.kafka_bootstrap, "--output", str(out), "--timeout", "60"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = {row["image_id"]: row for row in map(json.loads, out.read_text().splitlines())}
    assert set(lines) == {"line-1/ok-0.png", "line-1/ok-1.png", "line-1/ok-2.png", "scratch.png", "broken.png"}
    assert [lines[f"line-1/ok-{i}.png"]["status"] for i in range(3)] == ["normal"] * 3
    assert lines["scratch.png"]["status"] == "anomalous"
    assert lines["broken.png"]["status"] == "error" and "FILE_DECODING_FAILURE" in json.dumps(lines["broken.png"])
    assert "FILE_DECODING_FAILURE" in done.stdout


def test_worker_joins_and_dies_mid_stream(stack, hosted):
    """A second worker started mid-stream takes partitions; killed (SIGKILL) mid-stream, its
    partitions go back to the first worker: every image answered exactly once."""
    images = [pattern_png(8000 + i % 20) for i in range(20)]
    total = 240

    async def run() -> tuple[Stream, set[str]]:
        async with Stream(stack.kafka_bootstrap) as stream:
            workers_seen: set[str] = set()
            killed = False
            added = None
            for i in range(total):
                await stream.send(f"img-{i}", images[i % 20], headers_for(f"img-{i}"))
                if i == 20:
                    added = await asyncio.to_thread(stack.add_worker)
                await stream.collect(timeout=0.05)
                workers_seen = {r[0]["worker"] for r in stream.results.values()}
                if not killed and len(workers_seen) >= 2:
                    await asyncio.to_thread(stack.stop_worker, added, kill=True)
                    killed = True
                await asyncio.sleep(0.03)
            await stream.collect(timeout=120)
            assert killed, "the second worker never answered an image"
            return stream, workers_seen

    stream, workers_seen = asyncio.run(run())
    assert len(workers_seen) == 2
    missing = set(stream.sent) - set(stream.results)
    duplicated = {p: len(r) for p, r in stream.results.items() if len(r) > 1}
    assert not missing, f"{len(missing)} images without a result"
    assert not duplicated, duplicated
    assert all(r[0]["error_code"] == 0 for r in stream.results.values())


def test_detect_survives_the_death_of_one_of_two_units(stack, lookout, hosted):
    extra = stack.add_worker()
    lookout.start_model(ProjectName=hosted, ModelVersion="1", MinInferenceUnits=2)
    deadline = time.monotonic() + 60
    while "Hosted on 2 inference units" not in (
            desc := lookout.describe_model(ProjectName=hosted, ModelVersion="1")["ModelDescription"])["StatusMessage"]:
        assert time.monotonic() < deadline, desc
        time.sleep(0.3)
    client = make_client("lookoutvision", stack.endpoint_url)
    image = pattern_png(7300)
    started = threading.Event()

    def call(_: int) -> bool:
        started.set()
        return client.detect_anomalies(ProjectName=hosted, ModelVersion="1", Body=image,
                                       ContentType="image/png")["DetectAnomalyResult"]["IsAnomalous"]

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(call, i) for i in range(24)]
        started.wait()
        stack.stop_worker(extra, kill=True)
        results = [f.result() for f in futures]
    assert results == [False] * 24
    deadline = time.monotonic() + 30
    while "1 of 2" not in (desc := lookout.describe_model(ProjectName=hosted, ModelVersion="1")["ModelDescription"])[
            "StatusMessage"]:
        assert time.monotonic() < deadline, desc
        time.sleep(0.3)
    assert desc["Status"] == "HOSTED"
    lookout.start_model(ProjectName=hosted, ModelVersion="1", MinInferenceUnits=1)


def test_units_follow_the_load_between_min_and_max(stack, lookout, hosted):
    """MinInferenceUnits 1, MaxInferenceUnits 2: sustained requests add the second unit (on the
    second worker), and idleness removes it again (the test stack waits 4 s, not 60)."""
    extra = stack.add_worker()
    try:
        lookout.start_model(ProjectName=hosted, ModelVersion="1", MinInferenceUnits=1, MaxInferenceUnits=2)

        def message() -> str:
            return lookout.describe_model(ProjectName=hosted, ModelVersion="1")["ModelDescription"]["StatusMessage"]

        client = make_client("lookoutvision", stack.endpoint_url)
        image = pattern_png(7400)
        stop = threading.Event()

        def keep_busy() -> int:
            calls = 0
            while not stop.is_set():
                client.detect_anomalies(ProjectName=hosted, ModelVersion="1", Body=image, ContentType="image/png")
                calls += 1
            return calls

        # Generous bounds: the second unit loads its model on a worker that shares the CPU with the
        # load itself (a full run with other work on the machine once needed more than 40 s).
        with ThreadPoolExecutor(3) as pool:
            load = [pool.submit(keep_busy) for _ in range(3)]
            try:
                deadline = time.monotonic() + 90
                while "Hosted on 2 inference units (scales between 1 and 2" not in (text := message()):
                    assert time.monotonic() < deadline, text
                    time.sleep(0.5)
            finally:
                stop.set()  # else a failed wait leaves the callers running and the pool never closes
            assert sum(f.result() for f in load) > 0
        deadline = time.monotonic() + 90
        while "Hosted on 1 inference unit (scales between 1 and 2" not in (text := message()):
            assert time.monotonic() < deadline, text
            time.sleep(0.5)
    finally:
        lookout.start_model(ProjectName=hosted, ModelVersion="1", MinInferenceUnits=1)
        stack.stop_worker(extra)


def test_a_classification_model_answers_as_lookout_did(stack, lookout, hosted):
    """The model's datasets have no masks, so it is a classification model: DetectAnomalies answers
    IsAnomalous and Confidence only, and the result is plain JSON for code that saves it (AWS's
    helper library's batch_predict json.dumps-es it: a bytes mask made it write nothing)."""
    for image in (pattern_png(7600), pattern_png(7601, defect=True)):
        result = lookout.detect_anomalies(ProjectName=PROJECT, ModelVersion="1", Body=image,
                                          ContentType="image/png")["DetectAnomalyResult"]
        assert set(result) == {"Source", "IsAnomalous", "Confidence"}, result
        assert json.loads(json.dumps(result)) == result
    evaluation = signed_request(stack.endpoint_url, "GET", f"/loupe/v1/projects/{PROJECT}/models/1/evaluation").json()
    assert evaluation["data"]["ModelKind"] == "classification" and "AnomalyClasses" not in evaluation["data"]
    # Loupe's native route still offers the mask of a flagged image, beside the Lookout result.
    native = signed_request(stack.endpoint_url, "POST", f"/loupe/v1/projects/{PROJECT}/models/1/detect",
                            body=pattern_png(7602, defect=True), headers={"Content-Type": "image/png"}).json()
    assert native["data"]["DetectAnomalyResult"]["IsAnomalous"] and native["data"]["AnomalyMask"]
