"""Unit tests for the `loupe` command (libs/cli/loupe_cli): folder scanning, manifest lines,
batching, SigV4 upload signing, credential fallback, upload retries, the import flow against a
botocore Stubber + an httpx MockTransport upload server, and usage-error exit codes."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import struct
import zlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote, unquote

import boto3
import httpx
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from loupe_cli import connection as conn_mod
from loupe_cli.connection import (
    DEV_ACCESS_KEY_ID,
    DEV_SECRET_ACCESS_KEY,
    Connection,
    Uploaded,
    UploadFailure,
    UploadSession,
    resolve_connection,
    sign_upload,
    upload_url,
)
from loupe_cli.folders import FolderError, scan_folder
from loupe_cli.importer import ImportHooks, ProjectNotFound, ensure_dataset, ensure_project, run_import, send_batches
from loupe_cli.main import app
from loupe_cli.manifest import MAX_BATCH_BYTES, MAX_BATCH_LINES, batches, iso_timestamp, manifest_line

KEY, SECRET, REGION = "AKIDTESTKEY", "test-secret-key", "eu-west-1"
ENDPOINT = "http://loupe.test:8080"


def png_bytes(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (0, 0, 0)) -> bytes:
    """A minimal valid RGB PNG, without Pillow."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_png_helper_makes_a_decodable_image() -> None:
    pil = pytest.importorskip("PIL.Image")
    import io

    image = pil.open(io.BytesIO(png_bytes(3, 2, (255, 0, 0))))
    image.load()
    assert image.size == (3, 2) and image.getpixel((0, 0)) == (255, 0, 0)


# --- folders ---------------------------------------------------------------------------------


def test_scan_labels_recurses_sorts_and_skips(tmp_path: Path) -> None:
    write(tmp_path / "normal" / "b.png", png_bytes())
    write(tmp_path / "normal" / "a.JPG", b"jpeg")
    write(tmp_path / "normal" / "sub" / "c.jpeg", b"jpeg")
    write(tmp_path / "normal" / "notes.txt", b"x")
    write(tmp_path / "anomaly" / "deep" / "er" / "z.PNG", png_bytes())
    write(tmp_path / "anomaly" / "y.png", png_bytes())
    write(tmp_path / "anomaly" / ".DS_Store", b"x")
    write(tmp_path / "anomaly" / "scan.tiff", b"x")
    write(tmp_path / "README.md", b"x")
    write(tmp_path / "other" / "q.png", png_bytes())  # an image outside the label folders

    scan = scan_folder(tmp_path)

    got = [(image.path.relative_to(tmp_path).as_posix(), image.label) for image in scan.images]
    assert got == [
        ("normal/a.JPG", "normal"),
        ("normal/b.png", "normal"),
        ("normal/sub/c.jpeg", "normal"),
        ("anomaly/deep/er/z.PNG", "anomaly"),
        ("anomaly/y.png", "anomaly"),
    ]
    assert (scan.count("normal"), scan.count("anomaly")) == (3, 2)
    skipped = sorted(p.relative_to(tmp_path).as_posix() for p in scan.skipped)
    assert skipped == ["README.md", "anomaly/.DS_Store", "anomaly/scan.tiff", "normal/notes.txt", "other/q.png"]


def test_scan_accepts_a_single_label_folder(tmp_path: Path) -> None:
    write(tmp_path / "anomaly" / "a.png", png_bytes())
    scan = scan_folder(tmp_path)
    assert [(i.path.name, i.label) for i in scan.images] == [("a.png", "anomaly")]


def test_scan_rejects_missing_folders(tmp_path: Path) -> None:
    write(tmp_path / "Normals" / "a.png", png_bytes())
    write(tmp_path / "normal", b"a file, not a folder")
    with pytest.raises(FolderError, match="neither a normal/ nor an anomaly/"):
        scan_folder(tmp_path)
    with pytest.raises(FolderError, match="not a directory"):
        scan_folder(tmp_path / "missing")
    with pytest.raises(FolderError, match="not a directory"):
        scan_folder(tmp_path / "normal")


# --- manifest --------------------------------------------------------------------------------


def test_manifest_line_format() -> None:
    created = datetime(2026, 11, 21, 20, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    line = manifest_line("s3://loupe-uploads/p/abc.png", "anomaly", created)
    assert "\n" not in line and ", " not in line and ": " not in line  # compact, one line
    assert json.loads(line) == {
        "source-ref": "s3://loupe-uploads/p/abc.png",
        "anomaly-label": 1,
        "anomaly-label-metadata": {
            "class-name": "anomaly",
            "confidence": 1,
            "human-annotated": "yes",
            "creation-date": "2026-11-21T19:00:00.123Z",
            "type": "groundtruth/image-classification",
            "job-name": "loupe-cli-import",
        },
    }
    normal = json.loads(manifest_line("s3://b/k.jpg", "normal", datetime(2026, 1, 2, tzinfo=UTC)))
    assert normal["anomaly-label"] == 0 and normal["anomaly-label-metadata"]["class-name"] == "normal"
    assert normal["anomaly-label-metadata"]["creation-date"] == "2026-01-02T00:00:00.000Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", iso_timestamp(datetime.now(UTC)))


def _split(payload: bytes) -> list[str]:
    assert payload.endswith(b"\n")
    return payload.decode("utf-8").split("\n")[:-1]


@pytest.mark.parametrize(
    ("max_bytes", "max_lines"),
    [(100, 1000), (64, 3), (1000, 1), (37, 1000), (10_000, 7)],
)
def test_batches_respect_limits_and_keep_order(max_bytes: int, max_lines: int) -> None:
    # Varying lengths and multi-byte characters: the limit is in bytes, not characters.
    lines = [f"{i}:" + ("é" if i % 3 == 0 else "x") * (i % 17) for i in range(250)]
    payloads = list(batches(lines, max_bytes, max_lines))
    for payload in payloads:
        assert len(payload) <= max_bytes
        assert payload.count(b"\n") <= max_lines
    sent = [line for payload in payloads for line in _split(payload)]
    assert sent == lines  # every line exactly once, in order
    # Greedy: no batch could have taken the first line of the next one.
    for payload, following in zip(payloads, payloads[1:]):
        nxt = (_split(following)[0] + "\n").encode()
        assert len(payload) + len(nxt) > max_bytes or payload.count(b"\n") == max_lines


def test_batches_default_limits() -> None:
    assert (MAX_BATCH_BYTES, MAX_BATCH_LINES) == (10_485_760, 5_000)
    small = [manifest_line(f"s3://b/{i:064x}.png", "normal", datetime(2026, 1, 1, tzinfo=UTC)) for i in range(12_001)]
    assert [p.count(b"\n") for p in batches(small)] == [5_000, 5_000, 2_001]
    big = ["x" * 1_000_000] * 25  # 1 MB lines: bytes, not the line count, bound these batches
    sizes = [len(p) for p in batches(big)]
    assert all(size <= MAX_BATCH_BYTES for size in sizes) and sum(sizes) == 25 * 1_000_001
    assert [s // 1_000_001 for s in sizes] == [10, 10, 5]


def test_batches_refuse_an_oversized_line_and_handle_empty() -> None:
    assert list(batches([])) == []
    with pytest.raises(ValueError, match="exceeds"):
        list(batches(["short", "y" * 50], max_bytes=20))


# --- signing ---------------------------------------------------------------------------------


def verify_sigv4(request: httpx.Request, secret: str) -> dict[str, str]:
    """An independent SigV4 check of the request as it went on the wire (canonicalises the raw
    path and query the way a server does)."""
    match = re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
        r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})",
        request.headers["authorization"],
    )
    assert match, request.headers["authorization"]
    key, date, region, service, signed, signature = match.groups()
    amz_date = request.headers["x-amz-date"]
    assert amz_date.startswith(date)
    raw_path, _, raw_query = request.url.raw_path.decode("ascii").partition("?")
    pairs = sorted(
        (quote(unquote(k), safe="-_.~"), quote(unquote(v), safe="-_.~"))
        for k, _, v in (part.partition("=") for part in raw_query.split("&") if part)
    )
    names = signed.split(";")
    assert "host" in names
    canonical = "\n".join(
        [
            request.method,
            quote(raw_path, safe="/~"),
            "&".join(f"{k}={v}" for k, v in pairs),
            "".join(f"{n}:{' '.join(request.headers[n].split())}\n" for n in names),
            signed,
            hashlib.sha256(request.content).hexdigest(),
        ]
    )
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, f"{date}/{region}/{service}/aws4_request",
         hashlib.sha256(canonical.encode()).hexdigest()]
    )
    k = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, signature), "signature does not verify"
    return {"key": key, "region": region, "service": service, "date": date}


def make_connection(transport: httpx.BaseTransport | None = None) -> Connection:
    session = boto3.Session(aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name=REGION)
    return Connection(ENDPOINT, REGION, session, used_dev_credentials=False, upload_transport=transport)


def test_sign_upload_sets_sigv4_headers() -> None:
    body = png_bytes()
    creds = make_connection().credentials()
    request = sign_upload(creds, REGION, upload_url(ENDPOINT, "parts", "a.png"), body, "image/png")
    amz_date = request.headers["X-Amz-Date"]
    assert re.fullmatch(r"\d{8}T\d{6}Z", amz_date)
    assert abs(datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(
        minutes=5
    )
    auth = request.headers["Authorization"]
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={KEY}/{amz_date[:8]}/{REGION}/lookoutvision/aws4_request, ")
    assert "content-type" in auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert request.headers["Content-Type"] == "image/png"
    assert request.url == f"{ENDPOINT}/loupe/v1/projects/parts/images?name=a.png"


def test_upload_request_on_the_wire_verifies(tmp_path: Path) -> None:
    # A name needing percent-encoding: what botocore signed must equal what httpx sent.
    image = write(tmp_path / "normal" / "scratch 1+ü (copy).JPEG", b"\xff\xd8\xff jpeg body")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        info = verify_sigv4(request, SECRET)
        assert info == {"key": KEY, "region": REGION, "service": "lookoutvision", "date": info["date"]}
        return httpx.Response(200, json={"error_code": 0, "data": {"source_ref": "s3://loupe-uploads/p/x.jpg"}})

    with UploadSession(make_connection(httpx.MockTransport(handler))) as session:
        outcome = session.upload("my-project", image)
    assert isinstance(outcome, Uploaded) and outcome.source_ref == "s3://loupe-uploads/p/x.jpg"
    (request,) = seen
    assert request.method == "POST"
    assert request.url.path == "/loupe/v1/projects/my-project/images"
    assert request.url.params["name"] == "scratch 1+ü (copy).JPEG"
    assert request.headers["content-type"] == "image/jpeg"
    assert request.content == image.read_bytes()

    # The verifier itself must be able to fail: a changed body breaks the signature.
    tampered = httpx.Request(request.method, request.url, headers=request.headers, content=b"other")
    with pytest.raises(AssertionError, match="does not verify"):
        verify_sigv4(tampered, SECRET)
    with pytest.raises(AssertionError, match="does not verify"):
        verify_sigv4(request, "wrong-secret")


# --- uploads: failures and retries -----------------------------------------------------------


def envelope(status: int, code: str, message: str) -> dict:
    return {
        "request_id": "r",
        "log_id": "l",
        "error_code": status,
        "error_detail": {"status_code": status, "code": code, "code_message": code, "message": message},
        "data": None,
    }


def test_upload_retries_5xx_then_succeeds(tmp_path: Path) -> None:
    image = write(tmp_path / "a.png", png_bytes())
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["x-amz-date"])
        verify_sigv4(request, SECRET)
        if len(calls) < 3:
            return httpx.Response(503, json=envelope(503, "SERVICE_UNAVAILABLE", "busy"))
        return httpx.Response(200, json={"error_code": 0, "data": {"source_ref": "s3://b/a.png"}})

    with UploadSession(make_connection(httpx.MockTransport(handler)), retry_delays=(0, 0, 0)) as session:
        assert session.upload("p", image) == Uploaded(image, "s3://b/a.png", {"source_ref": "s3://b/a.png"})
    assert len(calls) == 3


def test_upload_reports_4xx_without_retry_and_gives_up_after_retries(tmp_path: Path) -> None:
    image = write(tmp_path / "a.png", b"not really a png")
    calls = 0

    def refuse(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(400, json=envelope(400, "FILE_DECODING_FAILURE", "cannot decode the image"))

    with UploadSession(make_connection(httpx.MockTransport(refuse)), retry_delays=(0, 0, 0)) as session:
        assert session.upload("p", image) == UploadFailure(image, "FILE_DECODING_FAILURE", "cannot decode the image")
    assert calls == 1

    def broken(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("connection refused", request=request)

    calls = 0
    with UploadSession(make_connection(httpx.MockTransport(broken)), retry_delays=(0, 0, 0)) as session:
        outcome = session.upload("p", image)
    assert isinstance(outcome, UploadFailure) and outcome.code == "TRANSPORT_ERROR"
    assert calls == 4  # the first try and three retries

    def always_500(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(500, text="<html>oops</html>")

    calls = 0
    with UploadSession(make_connection(httpx.MockTransport(always_500)), retry_delays=(0, 0, 0)) as session:
        assert session.upload("p", image) == UploadFailure(image, "HTTP_500", "<html>oops</html>")
    assert calls == 4


# --- connection settings and the credential fallback -----------------------------------------


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An environment in which the boto3 chain finds nothing (and does not ask EC2 metadata)."""
    for name in (
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
        "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_DEFAULT_REGION", "AWS_REGION", "LOUPE_ENDPOINT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_falls_back_to_dev_credentials(no_aws_credentials: None) -> None:
    conn = resolve_connection()
    assert conn.used_dev_credentials
    creds = conn.credentials()
    assert (creds.access_key, creds.secret_key) == (DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY)
    assert (DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY) == ("LOUPEDEVACCESSKEY", "loupe-dev-secret-key")
    assert (conn.endpoint_url, conn.region) == ("http://127.0.0.1:8080", "us-east-1")
    client = conn.lookout_client()
    assert client.meta.endpoint_url == "http://127.0.0.1:8080" and client.meta.region_name == "us-east-1"


def test_uses_the_boto3_chain_when_it_has_credentials(
    no_aws_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env")
    conn = resolve_connection()
    assert not conn.used_dev_credentials
    assert conn.credentials().access_key == "AKIDFROMENV"


def test_profile_credentials_are_found(no_aws_credentials: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "no-credentials").write_text("[lab]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = s\n")
    monkeypatch.setenv("AWS_PROFILE", "lab")
    conn = resolve_connection()
    assert not conn.used_dev_credentials and conn.credentials().access_key == "AKIDPROFILE"


def test_endpoint_and_region_precedence(no_aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOUPE_ENDPOINT_URL", "http://env-host:9000/")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    conn = resolve_connection()
    assert (conn.endpoint_url, conn.region) == ("http://env-host:9000", "ap-south-1")
    conn = resolve_connection("http://flag-host:1234", "eu-central-1")
    assert (conn.endpoint_url, conn.region) == ("http://flag-host:1234", "eu-central-1")
    assert conn_mod.upload_url(conn.endpoint_url, "p", "a b.png") == "http://flag-host:1234/loupe/v1/projects/p/images?name=a%20b.png"


# --- the import flow (botocore Stubber validates every call against the lookoutvision model) --


def stubbed_client() -> tuple[object, Stubber]:
    client = boto3.client(
        "lookoutvision", region_name=REGION, endpoint_url=ENDPOINT,
        aws_access_key_id=KEY, aws_secret_access_key=SECRET,
    )
    return client, Stubber(client)


def dataset(status: str, message: str = "", stats: dict | None = None) -> dict:
    description: dict = {"ProjectName": "p", "DatasetType": "train", "Status": status, "StatusMessage": message}
    if stats is not None:
        description["ImageStats"] = stats
    return {"DatasetDescription": description}


def test_ensure_project(tmp_path: Path) -> None:
    client, stub = stubbed_client()
    with stub:
        stub.add_client_error("describe_project", "ResourceNotFoundException", http_status_code=404,
                              expected_params={"ProjectName": "p"})
        with pytest.raises(ProjectNotFound):
            ensure_project(client, "p", create=False)
        stub.add_client_error("describe_project", "ResourceNotFoundException", http_status_code=404)
        stub.add_response("create_project", {"ProjectMetadata": {"ProjectName": "p"}},
                          {"ProjectName": "p"})
        assert ensure_project(client, "p", create=True) is True
        stub.add_response("describe_project", {"ProjectDescription": {"ProjectName": "p"}}, {"ProjectName": "p"})
        assert ensure_project(client, "p", create=True) is False
        stub.assert_no_pending_responses()


def test_send_batches_waits_between_batches() -> None:
    client, stub = stubbed_client()
    payloads = [b'{"a":1}\n{"a":2}\n', b'{"a":3}\n']
    seen: list[str] = []
    key = {"ProjectName": "p", "DatasetType": "train"}
    with stub:
        stub.add_client_error("describe_dataset", "ResourceNotFoundException", http_status_code=404, expected_params=key)
        stub.add_response("create_dataset", {"DatasetMetadata": {"Status": "CREATE_COMPLETE"}}, key)
        assert ensure_dataset(client, "p", "train") is True
        # Busy at start: wait until it is idle before the first batch.
        stub.add_response("describe_dataset", dataset("UPDATE_IN_PROGRESS"), key)
        stub.add_response("describe_dataset", dataset("UPDATE_COMPLETE"), key)
        stub.add_response("update_dataset_entries", {"Status": "UPDATE_IN_PROGRESS"},
                          {**key, "Changes": payloads[0]})
        stub.add_response("describe_dataset", dataset("UPDATE_IN_PROGRESS"), key)
        stub.add_response("describe_dataset", dataset("UPDATE_FAILED_ROLLBACK_IN_PROGRESS"), key)
        stub.add_response("describe_dataset", dataset("UPDATE_FAILED_ROLLBACK_COMPLETE", "line 2: bad"), key)
        stub.add_response("update_dataset_entries", {"Status": "UPDATE_IN_PROGRESS"},
                          {**key, "Changes": payloads[1]})
        stub.add_response("describe_dataset", dataset("UPDATE_COMPLETE", "ok"), key)

        class Recorder(ImportHooks):
            def dataset_status(self, status: str) -> None:
                seen.append(status)

        outcomes = send_batches(client, "p", "train", payloads, poll_interval=0, hooks=Recorder())
        stub.assert_no_pending_responses()
    assert [(o.index, o.lines, o.status, o.message, o.ok) for o in outcomes] == [
        (1, 2, "UPDATE_FAILED_ROLLBACK_COMPLETE", "line 2: bad", False),
        (2, 1, "UPDATE_COMPLETE", "ok", True),
    ]
    assert seen[0] == "UPDATE_IN_PROGRESS" and seen[-1] == "UPDATE_COMPLETE"


def test_run_import_end_to_end_with_fakes(tmp_path: Path) -> None:
    a, b, c = png_bytes(rgb=(1, 1, 1)), png_bytes(rgb=(2, 2, 2)), png_bytes(rgb=(3, 3, 3))
    write(tmp_path / "normal" / "a.png", a)
    write(tmp_path / "normal" / "b.png", b)
    write(tmp_path / "normal" / "copy-of-a.png", a)  # same content: one manifest line
    write(tmp_path / "normal" / "readme.txt", b"skip me")
    write(tmp_path / "anomaly" / "c.png", c)
    write(tmp_path / "anomaly" / "broken.png", b"garbage")

    def server(request: httpx.Request) -> httpx.Response:
        verify_sigv4(request, SECRET)
        body = request.content
        if not body.startswith(b"\x89PNG"):
            return httpx.Response(400, json=envelope(400, "FILE_DECODING_FAILURE", "cannot decode"))
        sha = hashlib.sha256(body).hexdigest()
        return httpx.Response(200, json={"error_code": 0, "data": {"source_ref": f"s3://loupe-uploads/p/{sha}.png"}})

    client, stub = stubbed_client()

    class StubbedConnection(Connection):
        def lookout_client(self):  # type: ignore[no-untyped-def]
            return client

    session = boto3.Session(aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name=REGION)
    conn = StubbedConnection(ENDPOINT, REGION, session, False, upload_transport=httpx.MockTransport(server))
    now = datetime(2026, 11, 21, 19, 0, tzinfo=UTC)

    def line(data: bytes, label: str) -> str:
        return manifest_line(f"s3://loupe-uploads/p/{hashlib.sha256(data).hexdigest()}.png", label, now)  # type: ignore[arg-type]

    batch1 = (line(a, "normal") + "\n" + line(b, "normal") + "\n").encode()
    batch2 = (line(c, "anomaly") + "\n").encode()
    key = {"ProjectName": "p", "DatasetType": "train"}
    stats = {"Total": 3, "Labeled": 3, "Normal": 2, "Anomaly": 1}
    with stub:
        stub.add_response("describe_project", {"ProjectDescription": {"ProjectName": "p"}}, {"ProjectName": "p"})
        stub.add_client_error("describe_dataset", "ResourceNotFoundException", http_status_code=404, expected_params=key)
        stub.add_response("create_dataset", {"DatasetMetadata": {"Status": "CREATE_COMPLETE"}}, key)
        stub.add_response("describe_dataset", dataset("CREATE_COMPLETE"), key)
        stub.add_response("update_dataset_entries", {"Status": "UPDATE_IN_PROGRESS"}, {**key, "Changes": batch1})
        stub.add_response("describe_dataset", dataset("UPDATE_COMPLETE"), key)
        stub.add_response("update_dataset_entries", {"Status": "UPDATE_IN_PROGRESS"}, {**key, "Changes": batch2})
        stub.add_response("describe_dataset", dataset("UPDATE_COMPLETE"), key)
        stub.add_response("describe_dataset", dataset("UPDATE_COMPLETE", stats=stats), key)
        summary = run_import(tmp_path, "p", "train", connection=conn, poll_interval=0, max_batch_lines=2, now=now)
        stub.assert_no_pending_responses()

    assert (summary.found_normal, summary.found_anomaly, summary.skipped) == (3, 2, 1)
    assert summary.uploaded == 4 and summary.duplicates == 1
    assert [(f.path.name, f.code) for f in summary.failures] == [("broken.png", "FILE_DECODING_FAILURE")]
    assert summary.entries_sent == 3 and summary.batches_total == 2 and not summary.failed_batches
    assert summary.dataset_created and not summary.project_created
    assert summary.image_stats == stats
    assert summary.exit_code == 1  # one image failed


def test_run_import_rejects_a_bad_dataset_type(tmp_path: Path) -> None:
    write(tmp_path / "normal" / "a.png", png_bytes())
    with pytest.raises(ValueError, match="train, test"):
        run_import(tmp_path, "p", "validation", connection=make_connection())


# --- the command line ------------------------------------------------------------------------


runner = CliRunner()


@pytest.mark.parametrize(
    "case",
    ["no label folders", "missing dir", "dir is a file", "bad type", "missing project option"],
)
def test_usage_errors_exit_2(case: str, tmp_path: Path, no_aws_credentials: None) -> None:
    good = tmp_path / "good"
    write(good / "normal" / "a.png", png_bytes())
    empty = tmp_path / "empty"
    write(empty / "images" / "a.png", png_bytes())
    a_file = write(tmp_path / "file.png", png_bytes())
    # An unroutable endpoint: a usage error must be detected before any network call.
    base = ["dataset", "import"]
    tail = ["--endpoint-url", "http://127.0.0.1:9"]
    args = {
        "no label folders": [str(empty), "--project", "p", "--type", "train"],
        "missing dir": [str(tmp_path / "nope"), "--project", "p", "--type", "train"],
        "dir is a file": [str(a_file), "--project", "p", "--type", "test"],
        "bad type": [str(good), "--project", "p", "--type", "validation"],
        "missing project option": [str(good), "--type", "train"],
    }[case]
    result = runner.invoke(app, base + args + tail)
    assert result.exit_code == 2, result.output
    if case == "no label folders":
        assert "neither a normal/ nor an anomaly/" in result.output


def test_unreachable_endpoint_is_exit_1_not_2(tmp_path: Path, no_aws_credentials: None) -> None:
    write(tmp_path / "normal" / "a.png", png_bytes())
    result = runner.invoke(
        app, ["dataset", "import", str(tmp_path), "--project", "p", "--type", "train", "--endpoint-url", "http://127.0.0.1:9"]
    )
    assert result.exit_code == 1, result.output
    assert "development keys" in result.output  # the one-line note about the fallback


def _bundle(files: dict[str, bytes], listed: dict[str, bytes] | None = None) -> bytes:
    import hashlib
    import io
    import zipfile

    manifest = {"component": {"name": "c", "version": "1.0.0"},
                "files": {p: {"sha256": hashlib.sha256(d).hexdigest()} for p, d in (listed or files).items()}}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in {**files, "manifest.json": json.dumps(manifest).encode()}.items():
            z.writestr(name, data)
    return out.getvalue()


def test_a_packaged_bundle_unpacks_only_when_its_manifest_holds(tmp_path: Path) -> None:
    from loupe_cli.packaging import BundleRejected, parse_target, unpack

    folder = unpack(_bundle({"model/model.onnx": b"graph"}), tmp_path)
    assert folder == tmp_path / "c-1.0.0" and (folder / "model" / "model.onnx").read_bytes() == b"graph"
    with pytest.raises(BundleRejected, match="SHA-256"):
        unpack(_bundle({"model/model.onnx": b"altered"}, {"model/model.onnx": b"graph"}), tmp_path / "x")
    with pytest.raises(BundleRejected, match="outside"):
        unpack(_bundle({"../escape.txt": b"x"}), tmp_path / "y")
    assert not (tmp_path / "escape.txt").exists()
    assert parse_target(None, None) == {"TargetPlatform": {"Os": "LINUX", "Arch": "X86_64"}}
    assert parse_target("linux/arm64/nvidia", None)["TargetPlatform"]["Accelerator"] == "NVIDIA"
    assert parse_target(None, "jetson_xavier") == {"TargetDevice": "jetson_xavier"}
    with pytest.raises(ValueError):
        parse_target("linux", None)
