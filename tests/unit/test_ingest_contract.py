"""Unit tests for the ingest topic's contract (loupe_common.ingest: record formats, rejections,
result envelopes) and for the pure parts of `loupe ingest` (folder scan, result matching)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from loupe_cli import ingest as cli_ingest
from loupe_cli.ingest import (
    FolderImage,
    IngestReport,
    NotSent,
    SkipImage,
    check_target,
    find_images,
    load_image,
    record_headers,
    summarize,
)
from loupe_cli.main import app
from loupe_common import ingest
from loupe_common.errors import AILAB_CODES
from loupe_common.ingest import IngestRejected, Position, image_id_of, parse, result_envelope
from loupe_common.topics import INGEST

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32


def headers(**overrides: str | None) -> dict[str, bytes]:
    values = {ingest.H_PROJECT: "proj-1", ingest.H_MODEL_VERSION: "3", ingest.H_CONTENT_TYPE: "image/png",
              ingest.H_IMAGE_ID: "cam/7.png"}
    values.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return {k: v.encode() for k, v in values.items() if v is not None}


def envelope(**fields: object) -> bytes:
    body: dict[str, object] = {"project": "proj-1", "model_version": "3", "image_id": "a",
                               "content_type": "image/jpeg", "image": base64.b64encode(JPEG).decode()}
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def rejected(value: bytes | None, hdrs: dict[str, bytes]) -> IngestRejected:
    with pytest.raises(IngestRejected) as info:
        parse(value, hdrs)
    return info.value


# --- parse: the header form --------------------------------------------------------------------


def test_parse_header_form() -> None:
    image = parse(PNG, headers())
    assert image == ingest.IngestImage("proj-1", "3", "cam/7.png", "image/png", PNG, None)


def test_parse_header_form_content_type_parameters_and_case() -> None:
    image = parse(JPEG, headers(**{"content-type": "Image/JPEG; charset=binary"}))
    assert image.content_type == "image/jpeg"


def test_parse_header_form_optional_image_id_and_content_type() -> None:
    image = parse(PNG, headers(**{"loupe-image-id": None, "content-type": None}))
    assert image.image_id is None and image.content_type is None and image.data == PNG


def test_parse_header_form_truncates_a_huge_image_id() -> None:
    assert len(parse(PNG, headers(**{"loupe-image-id": "x" * 5000})).image_id or "") == 1024


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"loupe-project": None}, "MISSING_PARAMETERS"),
        ({"loupe-model-version": None}, "MISSING_PARAMETERS"),
        ({"loupe-model-version": "0"}, "ERROR_INVALID_PARAMETER"),
        ({"loupe-model-version": "abc"}, "ERROR_INVALID_PARAMETER"),
        ({"loupe-model-version": "01"}, "ERROR_INVALID_PARAMETER"),
        ({"loupe-model-version": "12345678901"}, "ERROR_INVALID_PARAMETER"),
        ({"loupe-project": "bad name"}, "ERROR_INVALID_PARAMETER"),
        ({"loupe-project": "-leading-dash"}, "ERROR_INVALID_PARAMETER"),
        ({"loupe-project": "p" * 256}, "ERROR_INVALID_PARAMETER"),
        ({"loupe-project": "proj", "content-type": "image/gif"}, "UNSUPPORTED_FILE_TYPES"),
        ({"content-type": "application/octet-stream"}, "UNSUPPORTED_FILE_TYPES"),
    ],
)
def test_parse_header_form_rejections(overrides: dict[str, str | None], code: str) -> None:
    assert rejected(PNG, headers(**overrides)).code == code


def test_parse_accepts_the_longest_valid_names() -> None:
    image = parse(PNG, headers(**{"loupe-project": "p" * 255, "loupe-model-version": "9" * 10}))
    assert image.project_name == "p" * 255 and image.model_version == "9" * 10


# --- parse: the JSON form ----------------------------------------------------------------------


def test_parse_json_form_with_base64_image() -> None:
    image = parse(envelope(), {})
    assert image == ingest.IngestImage("proj-1", "3", "a", "image/jpeg", JPEG, None)


def test_parse_json_form_with_an_explicit_json_content_type_and_numeric_fields() -> None:
    image = parse(envelope(model_version=12, image_id=42), {ingest.H_CONTENT_TYPE: b"application/json"})
    assert (image.model_version, image.image_id) == ("12", "42")


@pytest.mark.parametrize("ref", ["s3://bucket/key/image.png", "file:///data/image.png"])
def test_parse_json_form_with_image_ref(ref: str) -> None:
    image = parse(envelope(image=None, image_ref=ref, content_type=None), {})
    assert image.data is None and image.image_ref == ref and image.content_type is None


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (envelope(project=None), "MISSING_PARAMETERS"),
        (envelope(model_version=None), "MISSING_PARAMETERS"),
        (envelope(model_version="0"), "ERROR_INVALID_PARAMETER"),
        (envelope(model_version="abc"), "ERROR_INVALID_PARAMETER"),
        (envelope(model_version=0), "ERROR_INVALID_PARAMETER"),
        (envelope(project="no/slashes"), "ERROR_INVALID_PARAMETER"),
        (envelope(project=""), "ERROR_INVALID_PARAMETER"),
        (envelope(content_type="image/webp"), "UNSUPPORTED_FILE_TYPES"),
        (envelope(image_ref="s3://b/k"), "MISSING_PARAMETERS"),  # both image and image_ref
        (envelope(image=None), "MISSING_PARAMETERS"),  # neither
        (envelope(image="not base64!"), "ERROR_PARAMETERS"),
        (envelope(image="QUJ"), "ERROR_PARAMETERS"),  # bad padding
        (envelope(image=None, image_ref="http://example.com/x.png"), "ERROR_PARAMETERS"),
        (envelope(image=None, image_ref=7), "ERROR_PARAMETERS"),
        (b"not json at all", "ERROR_PARAMETERS"),
        (PNG, "ERROR_PARAMETERS"),  # raw bytes without the loupe-* headers
        (b"\xff\xfe{garbage", "ERROR_PARAMETERS"),
        (b"", "ERROR_PARAMETERS"),
        (None, "ERROR_PARAMETERS"),
        (b"[1, 2]", "ERROR_PARAMETERS"),  # JSON, but not an object
        (b'"a string"', "ERROR_PARAMETERS"),
    ],
)
def test_parse_json_form_rejections(value: bytes | None, code: str) -> None:
    assert rejected(value, {}).code == code


def test_a_rejection_carries_a_catalogue_code_and_a_message() -> None:
    exc = rejected(b"nope", {})
    assert exc.code in AILAB_CODES and exc.message == str(exc)
    with pytest.raises(AssertionError):
        IngestRejected("NOT_A_CODE", "x")


# --- image_id_of -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "hdrs", "expected"),
    [
        (PNG, {ingest.H_IMAGE_ID: b"from-header"}, "from-header"),
        (envelope(image_id="from-json"), {ingest.H_IMAGE_ID: b"header-wins"}, "header-wins"),
        (envelope(image_id="from-json"), {}, "from-json"),
        (envelope(image_id=7), {}, "7"),
        (envelope(image_id=None), {}, None),
        (b"{not json", {}, None),
        (PNG, {}, None),
        (None, {}, None),
        (b"", {}, None),
        (b'{"image_id": "x", "image": "@@@"}', {}, "x"),  # an id even when parse() rejects the record
    ],
)
def test_image_id_of(value: bytes | None, hdrs: dict[str, bytes], expected: str | None) -> None:
    assert image_id_of(value, hdrs) == expected


# --- Position and result envelopes -------------------------------------------------------------


def test_request_id_is_deterministic_and_differs_per_position() -> None:
    a = Position(INGEST, 2, 41)
    assert a.request_id == Position(INGEST, 2, 41).request_id
    assert uuid.UUID(a.request_id).version == 5
    others = {Position(INGEST, 2, 42), Position(INGEST, 3, 41), Position("other.topic", 2, 41)}
    assert a.request_id not in {p.request_id for p in others}
    assert len({p.request_id for p in others}) == 3


def test_result_envelope_success() -> None:
    position = Position(INGEST, 1, 9)
    detection = {"IsAnomalous": True, "Confidence": 0.93, "Anomalies": [], "AnomalyMask": "iVBOR"}
    body = result_envelope(position, image_id="a.png", project_name="proj-1", model_version="3",
                           detection=detection)
    assert body == {
        "request_id": position.request_id,
        "log_id": position.request_id.replace("-", "")[:20],
        "error_code": 0,
        "error_detail": {"status_code": 200, "code": "", "code_message": "", "message": ""},
        "data": {"DetectAnomalyResult": detection},
        "image_id": "a.png",
        "project": "proj-1",
        "model_version": "3",
        "source": {"topic": INGEST, "partition": 1, "offset": 9},
    }
    json.dumps(body)  # travels as JSON


@pytest.mark.parametrize(
    ("code", "status"),
    [("FILE_DECODING_FAILURE", 400), ("UNSUPPORTED_FILE_TYPES", 415), ("ERROR_RESOURCE_NOT_FOUND", 404),
     ("FILE_SIZE_EXCEEDS_LIMIT", 413), ("ERROR_LOW_RESOLUTION", 422), ("SERVICE_INTERNAL_ERROR", 500)],
)
def test_result_envelope_error(code: str, status: int) -> None:
    position = Position(INGEST, 0, 5)
    body = result_envelope(position, image_id=None, code=code, message="why")
    assert body["error_code"] == status
    assert body["error_detail"] == {"status_code": status, "code": code,
                                    "code_message": AILAB_CODES[code][1], "message": "why"}
    assert "data" not in body
    assert body["request_id"] == position.request_id
    assert (body["image_id"], body["project"], body["model_version"]) == (None, None, None)
    assert body["source"] == {"topic": INGEST, "partition": 0, "offset": 5}


# --- `loupe ingest`: folder, files, headers ----------------------------------------------------


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_find_images_recurses_sorts_and_uses_relative_ids(tmp_path: Path) -> None:
    write(tmp_path / "b.png", PNG)
    write(tmp_path / "sub" / "a.JPG", JPEG)
    write(tmp_path / "a.jpeg", JPEG)
    write(tmp_path / "notes.txt", b"x")
    scan = find_images(tmp_path)
    assert [i.image_id for i in scan.images] == ["a.jpeg", "b.png", "sub/a.JPG"]
    assert [p.name for p in scan.others] == ["notes.txt"]


def test_load_image_sniffs_the_content_type_and_skips_what_cannot_travel(tmp_path: Path) -> None:
    # A JPEG named .png is sent as image/jpeg: the content decides, not the name.
    assert load_image(FolderImage(write(tmp_path / "x.png", JPEG), "x.png"), 1000) == (JPEG, "image/jpeg")
    assert load_image(FolderImage(write(tmp_path / "y.jpg", PNG), "y.jpg"), 1000)[1] == "image/png"
    with pytest.raises(SkipImage, match="not a PNG or JPEG"):
        load_image(FolderImage(write(tmp_path / "z.png", b"GIF89a" + b"\x00" * 10), "z.png"), 1000)
    with pytest.raises(SkipImage, match="message limit"):
        load_image(FolderImage(write(tmp_path / "big.png", PNG + b"\x00" * 100), "big.png"), 100)
    with pytest.raises(SkipImage, match="cannot read"):
        load_image(FolderImage(tmp_path / "gone.png", "gone.png"), 1000)


def test_record_headers_parse_back_to_the_same_image() -> None:
    hdrs = dict(record_headers("proj-1", "3", "sub/a.png", "image/png"))
    assert parse(PNG, hdrs) == ingest.IngestImage("proj-1", "3", "sub/a.png", "image/png", PNG, None)


def test_check_target_refuses_what_every_record_would_be_rejected_for() -> None:
    check_target("proj-1", "3")
    for project, version in [("proj-1", "0"), ("proj-1", "v1"), ("bad name", "1"), ("", "1")]:
        with pytest.raises(ValueError):
            check_target(project, version)


def test_cli_bad_model_version_is_a_usage_error(tmp_path: Path) -> None:
    write(tmp_path / "a.png", PNG)
    result = CliRunner().invoke(app, ["ingest", str(tmp_path), "--project", "p", "--model", "latest"])
    assert result.exit_code == 2


def test_cli_folder_without_images_is_a_usage_error(tmp_path: Path) -> None:
    write(tmp_path / "notes.txt", b"x")
    result = CliRunner().invoke(app, ["ingest", str(tmp_path), "--project", "p", "--model", "1"])
    assert result.exit_code == 2


# --- `loupe ingest`: matching results to images ------------------------------------------------


def result(partition: int, offset: int, *, image_id: str = "ignored", code: str = "",
           anomalous: bool = False, topic: str = INGEST) -> dict:
    detection = None if code else {"IsAnomalous": anomalous, "Confidence": 0.8,
                                   "Anomalies": [{"Name": "background"}], "AnomalyMask": "aVZCT1I="}
    return result_envelope(Position(topic, partition, offset), image_id=image_id, project_name="p",
                           model_version="1", detection=detection, code=code, message="m" if code else "")


def test_summarize_matches_by_position_counts_duplicates_once_and_reports_missing() -> None:
    sent = {(0, 10): "a.png", (1, 4): "b.png", (0, 11): "c.png", (2, 0): "d.png", (1, 5): "e.png"}
    results = [
        result(0, 10, anomalous=True),
        result(1, 4),
        result(0, 10, anomalous=True),  # redelivered: counted once
        result(0, 11, code="FILE_DECODING_FAILURE"),
        result(1, 5, code="FILE_DECODING_FAILURE"),
        result(1, 5, code="FILE_DECODING_FAILURE"),
        result(0, 9, image_id="a.png"),  # a previous run's answer for the same image id: not ours
        result(2, 0, topic="some.other.topic"),  # same position, other topic: not ours
        {"source": "garbage"},
        None,
        [1, 2],
    ]
    summary = summarize(sent, results)
    assert (summary.normal, summary.anomalous) == (1, 1)
    assert summary.errors == {(400, "FILE_DECODING_FAILURE"): 2}
    assert summary.duplicates == 2
    assert summary.missing == ["d.png"]
    by_id = {o.image_id: o for o in summary.outcomes}
    assert by_id["a.png"].status == "anomalous" and by_id["b.png"].status == "normal"
    assert by_id["c.png"].message == "m" and by_id["c.png"].request_id == Position(INGEST, 0, 11).request_id
    assert "AnomalyMask" not in json.dumps(by_id["a.png"].to_json())


def test_summarize_names_images_by_what_we_sent_not_by_the_envelope() -> None:
    summary = summarize({(0, 1): "ours.png"}, [result(0, 1, image_id="theirs.png")])
    assert [o.image_id for o in summary.outcomes] == ["ours.png"] and not summary.missing


def test_summarize_first_result_wins() -> None:
    summary = summarize({(0, 1): "a.png"}, [result(0, 1, anomalous=True), result(0, 1, anomalous=False)])
    assert summary.anomalous == 1 and summary.normal == 0 and summary.duplicates == 1


def test_summarize_with_no_results_reports_every_image_missing_in_send_order() -> None:
    summary = summarize({(3, 0): "z.png", (0, 0): "a.png"}, [])
    assert summary.missing == ["z.png", "a.png"] and not summary.outcomes


def test_a_success_without_a_result_counts_as_an_error() -> None:
    body = result(0, 1)
    del body["data"]
    (outcome,) = summarize({(0, 1): "a.png"}, [body]).outcomes
    assert outcome.status == "error" and outcome.code == "MALFORMED_RESULT"


def test_report_lines_exit_code_and_jsonl(tmp_path: Path) -> None:
    summary = summarize({(0, 1): "a.png", (0, 2): "b.png"}, [result(0, 1, anomalous=True)])
    report = IngestReport("p", "1", "k:9092", image_ids=["a.png", "b.png", "c.png", "d.png"],
                          skipped=[NotSent("c.png", "too big")], failed=[NotSent("d.png", "broker down")],
                          sent=2, summary=summary)
    assert report.exit_code == 1
    out = tmp_path / "results.jsonl"
    cli_ingest.write_jsonl(out, report)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(line["image_id"], line["status"]) for line in lines] == [
        ("a.png", "anomalous"), ("b.png", "no_result"), ("c.png", "skipped"), ("d.png", "failed")]
    assert lines[0]["is_anomalous"] is True
    assert lines[0]["source"] == {"topic": INGEST, "partition": 0, "offset": 1}
    assert "AnomalyMask" not in out.read_text()


def test_report_exit_code_is_zero_when_every_sent_image_has_an_outcome() -> None:
    summary = summarize({(0, 1): "a.png"}, [result(0, 1, code="FILE_DECODING_FAILURE")])
    report = IngestReport("p", "1", "k", image_ids=["a.png", "b.png"], skipped=[NotSent("b.png", "x")],
                          sent=1, summary=summary)
    assert report.exit_code == 0


# --- `loupe ingest` end to end against fake Kafka clients --------------------------------------


class FakeBroker:
    """Stands in for Kafka and a worker: every record produced on the ingest topic is answered on
    the results partition of the same number, after some stale results from an earlier run."""

    def __init__(self, answer: Callable[[int, bytes, dict[str, bytes]], list[dict]], partitions: int = 2
                 ) -> None:
        self.answer = answer
        self.partitions = partitions
        self.results: dict[int, list[bytes]] = {p: [json.dumps(result(p, i, image_id="a.png")).encode()
                                                   for i in range(3)] for p in range(partitions)}
        self.ingest: dict[int, list[tuple[bytes, dict[str, bytes]]]] = {p: [] for p in range(partitions)}
        self.refuse: dict[str, Exception] = {}  # image id -> error from send()
        self.fail: dict[str, Exception] = {}  # image id -> error from the acknowledgement

    def produce(self, value: bytes, key: bytes, headers: list[tuple[str, bytes]]) -> asyncio.Future:
        image_id = key.decode()
        if image_id in self.refuse:
            raise self.refuse[image_id]
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        if image_id in self.fail:
            future.set_exception(self.fail[image_id])
            return future
        partition = sum(key) % self.partitions
        offset = len(self.ingest[partition])
        self.ingest[partition].append((value, dict(headers)))
        for envelope in self.answer(offset, value, dict(headers)):
            envelope["source"] = {"topic": INGEST, "partition": partition, "offset": offset}
            self.results[partition].append(json.dumps(envelope).encode())
        future.set_result(SimpleNamespace(partition=partition, offset=offset))
        return future


class FakeProducer:
    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.broker.partitions))

    async def send(self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
                   ) -> asyncio.Future:
        assert topic == INGEST
        return self.broker.produce(value, key, headers)


class FakeConsumer:
    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker
        self.positions: dict[int, int] = {}

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def topics(self) -> set[str]:
        return {INGEST, cli_ingest.INGEST_RESULTS}

    def assign(self, tps: list) -> None:
        self.positions = {tp.partition: 0 for tp in tps}

    async def end_offsets(self, tps: list) -> dict:
        return {tp: len(self.broker.results[tp.partition]) for tp in tps}

    def seek(self, tp: object, offset: int) -> None:
        self.positions[tp.partition] = offset  # type: ignore[attr-defined]

    async def getmany(self, timeout_ms: int) -> dict:
        batches = {}
        for partition, position in self.positions.items():
            values = self.broker.results[partition][position:]
            self.positions[partition] += len(values)
            if values:
                batches[partition] = [SimpleNamespace(value=v) for v in values]
        if not batches:
            await asyncio.sleep(timeout_ms / 1000)
        return batches


def worker(offset: int, value: bytes, headers: dict[str, bytes]) -> list[dict]:
    """Anomalous if the name says so, an error for a corrupt image, and every third answer twice."""
    name = headers[ingest.H_IMAGE_ID].decode()
    if "corrupt" in name:
        answer = result(0, 0, code="FILE_DECODING_FAILURE")
    else:
        answer = result(0, 0, anomalous="anomaly" in name)
    if "silent" in name:
        return []
    return [answer, dict(answer)] if offset % 3 == 0 else [answer]


@pytest.fixture
def fake_kafka(monkeypatch: pytest.MonkeyPatch) -> FakeBroker:
    broker = FakeBroker(worker)
    monkeypatch.setattr(cli_ingest, "_producer", lambda settings: FakeProducer(broker))
    monkeypatch.setattr(cli_ingest, "_consumer", lambda settings: FakeConsumer(broker))
    return broker


def folder(tmp_path: Path, names: list[str]) -> Path:
    for name in names:
        write(tmp_path / "in" / name, JPEG if name.endswith(".jpg") else PNG)
    return tmp_path / "in"


def test_run_ingest_sends_headers_and_matches_results(tmp_path: Path, fake_kafka: FakeBroker) -> None:
    directory = folder(tmp_path, ["a.png", "b.jpg", "sub/anomaly-1.png", "corrupt.png", "x/y/z.png"])
    settings = cli_ingest.Settings(kafka_bootstrap="fake:9092")
    report = cli_ingest.run_ingest(directory, "proj-1", "3", settings=settings, timeout=5)
    assert report.sent == 5 and not report.skipped and not report.failed
    summary = report.summary
    assert (summary.normal, summary.anomalous) == (3, 1)
    assert summary.errors == {(400, "FILE_DECODING_FAILURE"): 1}
    assert summary.duplicates >= 1 and not summary.missing and report.exit_code == 0
    records = [r for p in fake_kafka.ingest.values() for r in p]
    sent = {h[ingest.H_IMAGE_ID].decode(): (v, h) for v, h in records}
    value, hdrs = sent["b.jpg"]
    assert parse(value, hdrs) == ingest.IngestImage("proj-1", "3", "b.jpg", "image/jpeg", JPEG)
    assert set(sent) == {"a.png", "b.jpg", "sub/anomaly-1.png", "corrupt.png", "x/y/z.png"}


def test_run_ingest_reports_skipped_failed_and_missing(tmp_path: Path, fake_kafka: FakeBroker) -> None:
    from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError, NotLeaderForPartitionError

    directory = folder(tmp_path, ["a.png", "big.png", "headers.png", "lost.png", "refused.png", "silent.png"])
    write(directory / "big.png", PNG + b"\x00" * 2000)
    write(directory / "fake.jpg", b"GIF89a")
    fake_kafka.refuse = {"headers.png": MessageSizeTooLargeError(), "refused.png": KafkaTimeoutError()}
    fake_kafka.fail = {"lost.png": NotLeaderForPartitionError()}
    settings = cli_ingest.Settings(kafka_bootstrap="fake:9092", kafka_max_message_bytes=1000)
    report = cli_ingest.run_ingest(directory, "proj-1", "3", settings=settings, timeout=0.3)
    assert sorted(n.image_id for n in report.skipped) == ["big.png", "fake.jpg", "headers.png"]
    assert sorted(n.image_id for n in report.failed) == ["lost.png", "refused.png"]
    assert report.sent == 2 and report.summary.missing == ["silent.png"] and report.summary.normal == 1
    assert report.exit_code == 1


def test_cli_ingest_summary_output_file_and_exit_code(tmp_path: Path, fake_kafka: FakeBroker) -> None:
    directory = folder(tmp_path, ["a.png", "anomaly.png", "corrupt.png", "silent.png"])
    out = tmp_path / "results.jsonl"
    args = ["ingest", str(directory), "-p", "proj-1", "-m", "3", "--timeout", "0.3",
            "--bootstrap", "fake:9092", "--output", str(out)]
    result_ = CliRunner().invoke(app, args, terminal_width=200)
    assert result_.exit_code == 1, result_.output
    assert "FILE_DECODING_FAILURE" in result_.output and "silent.png" in result_.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(line["image_id"], line["status"]) for line in lines] == [
        ("a.png", "normal"), ("anomaly.png", "anomalous"), ("corrupt.png", "error"),
        ("silent.png", "no_result")]


def test_cli_ingest_missing_topics_is_exit_1(tmp_path: Path, fake_kafka: FakeBroker,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_topics(self: FakeConsumer) -> set[str]:
        return set()

    monkeypatch.setattr(FakeConsumer, "topics", no_topics)
    result_ = CliRunner().invoke(app, ["ingest", str(folder(tmp_path, ["a.png"])), "-p", "p", "-m", "1"],
                                 terminal_width=200)
    assert result_.exit_code == 1 and "does not exist" in result_.output
    assert not any(fake_kafka.ingest.values())
