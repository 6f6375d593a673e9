"""The Loupe-native upload route (AILabTools envelope) and `loupe dataset import` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from helpers import png_bytes, signed_request, wait_dataset


def upload(stack, project: str, body: bytes, content_type: str, name: str = "x.png") -> httpx.Response:
    return signed_request(
        stack.endpoint_url, "POST", f"/loupe/v1/projects/{project}/images?name={name}",
        body=body, headers={"Content-Type": content_type},
    )


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict:
    body = response.json()
    assert response.status_code == status, body
    assert set(body) >= {"request_id", "log_id", "error_code", "error_detail"}
    assert body["request_id"] == response.headers["x-amzn-requestid"]
    assert body["error_code"] == (0 if status == 200 else status)
    assert body["error_detail"]["status_code"] == status
    assert body["error_detail"]["code"] == code
    return body


@pytest.fixture
def project(lookout, project_name) -> str:
    lookout.create_project(ProjectName=project_name)
    return project_name


def test_upload_returns_a_source_ref_usable_in_a_manifest(stack, lookout, project):
    image = png_bytes(120, 90, seed=11)
    data = assert_envelope(upload(stack, project, image, "image/png"), 200, "")["data"]
    assert data["source_ref"].startswith(f"s3://loupe-uploads/{project}/")
    assert (data["width"], data["height"], data["format"], data["file_name"]) == (120, 90, "PNG", "x.png")
    again = assert_envelope(upload(stack, project, image, "image/png"), 200, "")
    assert again["data"]["source_ref"] == data["source_ref"]  # named by content
    lookout.create_dataset(ProjectName=project, DatasetType="train")
    lookout.update_dataset_entries(
        ProjectName=project, DatasetType="train",
        Changes=json.dumps({"source-ref": data["source_ref"], "anomaly-label": 0}).encode(),
    )
    assert wait_dataset(lookout, project)["ImageStats"]["Normal"] == 1


def test_upload_multipart(stack, project):
    prepared = httpx.Request(
        "POST", "http://x/", files={"file": ("part.jpg", png_bytes(80, 80, seed=12, fmt="JPEG"), "image/jpeg")}
    )
    body = prepared.read()
    response = signed_request(
        stack.endpoint_url, "POST", f"/loupe/v1/projects/{project}/images",
        body=body, headers={"Content-Type": prepared.headers["content-type"]},
    )
    data = assert_envelope(response, 200, "")["data"]
    assert data["format"] == "JPEG" and data["file_name"] == "part.jpg" and data["source_ref"].endswith(".jpg")


@pytest.mark.parametrize(
    "body, content_type, status, code",
    [
        (png_bytes(seed=13), "image/gif", 415, "UNSUPPORTED_FILE_TYPES"),
        (b"GIF89a" + bytes(200), "image/png", 415, "UNSUPPORTED_FILE_TYPES"),
        (png_bytes(seed=14)[:300], "image/png", 400, "FILE_DECODING_FAILURE"),
        (png_bytes(40, 40, seed=15), "image/png", 422, "ERROR_LOW_RESOLUTION"),
        (b"", "image/png", 400, "MISSING_PARAMETERS"),
        (b"\x89PNG\r\n\x1a\n" + bytes(9 * 1024 * 1024), "image/png", 413, "FILE_SIZE_EXCEEDS_LIMIT"),
    ],
)
def test_upload_errors_use_the_catalogue(stack, project, body, content_type, status, code):
    assert_envelope(upload(stack, project, body, content_type), status, code)


@pytest.mark.parametrize(("body", "status", "code"), [
    (png_bytes(4100, 64, seed=17), 422, "ERROR_HIGH_RESOLUTION"),
    (png_bytes(40, 40, seed=18), 422, "ERROR_LOW_RESOLUTION"),
    (png_bytes(seed=20), 415, "UNSUPPORTED_FILE_TYPES"),  # PNG bytes labelled image/jpeg
])
def test_one_image_gets_one_error_code_on_upload_and_on_native_detect(stack, project, body, status, code):
    declared = "image/jpeg" if code == "UNSUPPORTED_FILE_TYPES" else "image/png"
    assert_envelope(upload(stack, project, body, declared), status, code)
    detected = signed_request(stack.endpoint_url, "POST", f"/loupe/v1/projects/{project}/models/1/detect",
                              body=body, headers={"Content-Type": declared})
    assert_envelope(detected, status, code)
    prepared = httpx.Request("POST", "http://x/", files={"file": ("a.jpg" if declared == "image/jpeg" else "a.png",
                                                                  body, declared)})
    multipart = signed_request(stack.endpoint_url, "POST", f"/loupe/v1/projects/{project}/images",
                               body=prepared.read(), headers={"Content-Type": prepared.headers["content-type"]})
    assert_envelope(multipart, status, code)


def test_upload_to_unknown_project_and_unsigned(stack):
    assert_envelope(upload(stack, "no-such-project", png_bytes(seed=16), "image/png"), 404, "ERROR_RESOURCE_NOT_FOUND")
    assert_envelope(upload(stack, "bad%20name", png_bytes(seed=16), "image/png"), 400, "ERROR_INVALID_PARAMETER")
    unsigned = httpx.post(stack.endpoint_url + "/loupe/v1/projects/x/images", content=b"x",
                          headers={"Content-Type": "image/png"})
    assert_envelope(unsigned, 403, "AI_SERVICE_UNAUTHORIZED")


def test_cli_imports_a_folder(stack, lookout, project_name, tmp_path: Path, monkeypatch):
    from loupe_cli.importer import run_import

    for i in range(6):
        (tmp_path / "normal").mkdir(exist_ok=True)
        (tmp_path / "normal" / f"n{i}.png").write_bytes(png_bytes(seed=900 + i))
    (tmp_path / "anomaly").mkdir()
    for i in range(3):
        (tmp_path / "anomaly" / f"a{i}.jpg").write_bytes(png_bytes(seed=950 + i, fmt="JPEG"))
    (tmp_path / "anomaly" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    (tmp_path / "normal" / "notes.txt").write_text("skipped")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "LOUPEDEVACCESSKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "loupe-dev-secret-key")

    summary = run_import(tmp_path, project_name, "train", endpoint_url=stack.endpoint_url,
                         create_project=True, poll_interval=0.1)
    assert summary.project_created and summary.dataset_created
    assert (summary.found_normal, summary.found_anomaly, summary.skipped) == (6, 4, 1)
    assert summary.uploaded == 9
    assert [(f.path.name, f.code) for f in summary.failures] == [("broken.png", "FILE_DECODING_FAILURE")]
    assert summary.image_stats == {"Total": 9, "Labeled": 9, "Normal": 6, "Anomaly": 3}
    assert summary.exit_code == 1  # one image failed, and the summary says so
    entries = lookout.list_dataset_entries(ProjectName=project_name, DatasetType="train")["DatasetEntries"]
    assert len(entries) == 9
    assert all(json.loads(e)["source-ref"].startswith(f"s3://loupe-uploads/{project_name}/") for e in entries)

    # Importing the same folder again changes nothing (same content, same source-refs).
    again = run_import(tmp_path, project_name, "train", endpoint_url=stack.endpoint_url, poll_interval=0.1)
    assert again.image_stats == summary.image_stats and not again.dataset_created
