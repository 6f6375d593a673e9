"""Datasets and dataset entries through unmodified boto3: manifests with good and bad lines,
UpdateDatasetEntries (add, replace, roll back), filters and pagination, deletion rules."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from helpers import png_bytes, put_object, wait_dataset


def line(ref: str, label: int | None, **extra) -> str:
    doc: dict = {"source-ref": ref}
    if label is not None:
        doc["anomaly-label"] = label
        doc["anomaly-label-metadata"] = {
            "class-name": "anomaly" if label else "normal",
            "human-annotated": "yes",
            "creation-date": "2026-11-01T10:00:00.000",
            "type": "groundtruth/image-classification",
            "job-name": "test",
        }
    doc.update(extra)
    return json.dumps(doc)


def code_of(excinfo) -> tuple[str, int]:
    r = excinfo.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def project(lookout, project_name):
    lookout.create_project(ProjectName=project_name)
    return project_name


@pytest.fixture
def bucket() -> str:
    return f"bkt-{uuid.uuid4().hex[:8]}"


def test_empty_dataset_is_created_synchronously(lookout, project):
    created = lookout.create_dataset(ProjectName=project, DatasetType="train")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert created["DatasetMetadata"]["Status"] == "CREATE_COMPLETE"
    desc = lookout.describe_dataset(ProjectName=project, DatasetType="train")["DatasetDescription"]
    assert desc["ImageStats"] == {"Total": 0, "Labeled": 0, "Normal": 0, "Anomaly": 0}
    assert desc["ProjectName"] == project
    datasets = lookout.describe_project(ProjectName=project)["ProjectDescription"]["Datasets"]
    assert [(d["DatasetType"], d["Status"]) for d in datasets] == [("train", "CREATE_COMPLETE")]


def test_manifest_with_good_and_bad_lines(lookout, project, bucket, bucket_root):
    refs = [put_object(bucket_root, bucket, f"img/n{i}.png", png_bytes(seed=i)) for i in range(4)]
    anomalous = put_object(bucket_root, bucket, "img/a0.jpg", png_bytes(seed=99, fmt="JPEG"))
    tiny = put_object(bucket_root, bucket, "img/tiny.png", png_bytes(32, 32, seed=5))
    corrupt = put_object(bucket_root, bucket, "img/corrupt.png", png_bytes(seed=6)[:200])
    text = put_object(bucket_root, bucket, "img/readme.png", b"this is not an image")
    manifest = "\n".join(
        [line(r, 0) for r in refs]
        + [
            line(anomalous, 1),
            line(tiny, 0),                      # line 6: below 64x64
            line(corrupt, 0),                   # line 7: truncated PNG
            line(text, 1),                      # line 8: not an image
            line(f"s3://{bucket}/img/missing.png", 0),  # line 9
            "{not json",                        # line 10
            json.dumps({"anomaly-label": 0}),   # line 11: no source-ref
            line(refs[0], 1),                   # line 12: duplicate source-ref
            line(refs[1].replace("n1", "n1x"), 2),  # line 13: bad label
        ]
    )
    put_object(bucket_root, bucket, "manifests/train.manifest", manifest.encode())
    created = lookout.create_dataset(
        ProjectName=project,
        DatasetType="train",
        DatasetSource={"GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Key": "manifests/train.manifest"}}},
    )
    assert created["DatasetMetadata"]["Status"] in ("CREATE_IN_PROGRESS", "CREATE_COMPLETE")
    desc = wait_dataset(lookout, project)
    assert desc["Status"] == "CREATE_COMPLETE", desc
    assert desc["ImageStats"] == {"Total": 5, "Labeled": 5, "Normal": 4, "Anomaly": 1}
    message = desc["StatusMessage"]
    assert "Imported 5 of 13" in message
    for number in (6, 7, 8, 9, 10, 11, 12, 13):
        assert f"line {number}:" in message, (number, message)
    assert "64x64" in message and "not found" in message and "duplicate" in message

    entries = [
        json.loads(e)
        for page in lookout.get_paginator("list_dataset_entries").paginate(ProjectName=project, DatasetType="train")
        for e in page["DatasetEntries"]
    ]
    assert sorted(e["source-ref"] for e in entries) == sorted(refs + [anomalous])


def test_manifest_that_cannot_be_read_fails_the_dataset(lookout, project, bucket):
    lookout.create_dataset(
        ProjectName=project,
        DatasetType="test",
        DatasetSource={"GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Key": "nope.manifest"}}},
    )
    desc = wait_dataset(lookout, project, "test")
    assert desc["Status"] == "CREATE_FAILED"
    assert "not found" in desc["StatusMessage"]


def test_dataset_source_is_validated(lookout, project):
    with pytest.raises(ClientError) as excinfo:
        lookout.create_dataset(
            ProjectName=project,
            DatasetType="train",
            DatasetSource={"GroundTruthManifest": {"S3Object": {"Bucket": "bad/bucket", "Key": "k"}}},
        )
    assert code_of(excinfo) == ("ValidationException", 400)
    assert "bucket" in excinfo.value.response["Error"]["Message"]


def test_dataset_type_and_project_checks(lookout, project):
    with pytest.raises(ClientError) as excinfo:
        lookout.create_dataset(ProjectName=project, DatasetType="validation")
    assert code_of(excinfo) == ("ValidationException", 400)
    with pytest.raises(ClientError) as excinfo:
        lookout.create_dataset(ProjectName=project + "-missing", DatasetType="train")
    assert code_of(excinfo) == ("ResourceNotFoundException", 404)
    assert excinfo.value.response["ResourceType"] == "PROJECT"
    with pytest.raises(ClientError) as excinfo:
        lookout.describe_dataset(ProjectName=project, DatasetType="test")
    assert code_of(excinfo) == ("ResourceNotFoundException", 404)
    assert excinfo.value.response["ResourceType"] == "DATASET"
    lookout.create_dataset(ProjectName=project, DatasetType="train")
    with pytest.raises(ClientError) as excinfo:
        lookout.create_dataset(ProjectName=project, DatasetType="train")
    assert code_of(excinfo) == ("ConflictException", 409)


def test_update_entries_adds_and_replaces(lookout, project, bucket, bucket_root):
    lookout.create_dataset(ProjectName=project, DatasetType="train")
    refs = [put_object(bucket_root, bucket, f"u/{i}.png", png_bytes(seed=100 + i)) for i in range(3)]
    out = lookout.update_dataset_entries(
        ProjectName=project, DatasetType="train", Changes="\n".join(line(r, 0) for r in refs).encode()
    )
    assert out["Status"] == "UPDATE_IN_PROGRESS"
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 202
    desc = wait_dataset(lookout, project)
    assert desc["Status"] == "UPDATE_COMPLETE"
    assert desc["ImageStats"] == {"Total": 3, "Labeled": 3, "Normal": 3, "Anomaly": 0}

    # Relabel one image and add an unlabeled one: replaced by source-ref, not duplicated.
    extra = put_object(bucket_root, bucket, "u/new.png", png_bytes(seed=200))
    lookout.update_dataset_entries(
        ProjectName=project, DatasetType="train",
        Changes=(line(refs[0], 1) + "\n" + line(extra, None)).encode(),
    )
    desc = wait_dataset(lookout, project)
    assert desc["Status"] == "UPDATE_COMPLETE"
    assert "Added 1 and replaced 1" in desc["StatusMessage"]
    assert desc["ImageStats"] == {"Total": 4, "Labeled": 3, "Normal": 2, "Anomaly": 1}

    anomalies = lookout.list_dataset_entries(ProjectName=project, DatasetType="train", AnomalyClass="anomaly")
    assert [json.loads(e)["source-ref"] for e in anomalies["DatasetEntries"]] == [refs[0]]
    unlabeled = lookout.list_dataset_entries(ProjectName=project, DatasetType="train", Labeled=False)
    assert [json.loads(e)["source-ref"] for e in unlabeled["DatasetEntries"]] == [extra]
    labeled = lookout.list_dataset_entries(ProjectName=project, DatasetType="train", Labeled=True)
    assert len(labeled["DatasetEntries"]) == 3
    contains = lookout.list_dataset_entries(ProjectName=project, DatasetType="train", SourceRefContains="new.p")
    assert [json.loads(e)["source-ref"] for e in contains["DatasetEntries"]] == [extra]


def test_update_with_a_bad_line_rolls_back(lookout, project, bucket, bucket_root):
    lookout.create_dataset(ProjectName=project, DatasetType="train")
    good = put_object(bucket_root, bucket, "r/good.png", png_bytes(seed=300))
    lookout.update_dataset_entries(ProjectName=project, DatasetType="train", Changes=line(good, 0).encode())
    assert wait_dataset(lookout, project)["Status"] == "UPDATE_COMPLETE"
    other = put_object(bucket_root, bucket, "r/other.png", png_bytes(seed=301))
    lookout.update_dataset_entries(
        ProjectName=project, DatasetType="train",
        Changes=(line(other, 1) + "\n" + line(f"s3://{bucket}/r/absent.png", 0)).encode(),
    )
    desc = wait_dataset(lookout, project)
    assert desc["Status"] == "UPDATE_FAILED_ROLLBACK_COMPLETE"
    assert "line 2:" in desc["StatusMessage"] and "No entry was changed" in desc["StatusMessage"]
    assert desc["ImageStats"]["Total"] == 1
    entries = lookout.list_dataset_entries(ProjectName=project, DatasetType="train")["DatasetEntries"]
    assert [json.loads(e)["source-ref"] for e in entries] == [good]
    # The dataset stays usable after a rollback.
    lookout.update_dataset_entries(ProjectName=project, DatasetType="train", Changes=line(other, 1).encode())
    assert wait_dataset(lookout, project)["ImageStats"]["Total"] == 2


def test_update_entries_idempotent_with_client_token(lookout, project, bucket, bucket_root):
    lookout.create_dataset(ProjectName=project, DatasetType="train")
    ref = put_object(bucket_root, bucket, "i/1.png", png_bytes(seed=400))
    changes = line(ref, 0).encode()
    first = lookout.update_dataset_entries(ProjectName=project, DatasetType="train", Changes=changes, ClientToken="upd-1")
    again = lookout.update_dataset_entries(ProjectName=project, DatasetType="train", Changes=changes, ClientToken="upd-1")
    assert first["Status"] == again["Status"] == "UPDATE_IN_PROGRESS"
    assert wait_dataset(lookout, project)["ImageStats"]["Total"] == 1
    with pytest.raises(ClientError) as excinfo:
        lookout.update_dataset_entries(
            ProjectName=project, DatasetType="train", Changes=changes + b"\n", ClientToken="upd-1"
        )
    assert code_of(excinfo) == ("ConflictException", 409)


def test_update_while_busy_is_a_conflict(lookout, project, bucket, bucket_root):
    lookout.create_dataset(ProjectName=project, DatasetType="train")
    refs = [put_object(bucket_root, bucket, f"b/{i}.png", png_bytes(640, 480, seed=500 + i)) for i in range(40)]
    lookout.update_dataset_entries(
        ProjectName=project, DatasetType="train", Changes="\n".join(line(r, 0) for r in refs).encode()
    )
    with pytest.raises(ClientError) as excinfo:
        lookout.update_dataset_entries(ProjectName=project, DatasetType="train", Changes=line(refs[0], 1).encode())
    assert code_of(excinfo) == ("ConflictException", 409)
    assert wait_dataset(lookout, project)["ImageStats"]["Total"] == 40


def test_changes_limit_is_enforced(lookout, project):
    lookout.create_dataset(ProjectName=project, DatasetType="train")
    with pytest.raises(ClientError) as excinfo:
        lookout.update_dataset_entries(
            ProjectName=project, DatasetType="train", Changes=b"{}" * (10_485_760 // 2 + 1)
        )
    assert code_of(excinfo) == ("ValidationException", 400)


def test_list_entries_pagination_and_filters(lookout, project, bucket, bucket_root):
    lookout.create_dataset(ProjectName=project, DatasetType="test")
    refs = [put_object(bucket_root, bucket, f"p/{i:02d}.png", png_bytes(seed=600 + i)) for i in range(11)]
    lookout.update_dataset_entries(
        ProjectName=project, DatasetType="test",
        Changes="\n".join(line(r, i % 2) for i, r in enumerate(refs)).encode(),
    )
    assert wait_dataset(lookout, project, "test")["ImageStats"]["Total"] == 11
    pages = list(
        lookout.get_paginator("list_dataset_entries").paginate(
            ProjectName=project, DatasetType="test", PaginationConfig={"PageSize": 3}
        )
    )
    assert len(pages) == 4
    refs_seen = [json.loads(e)["source-ref"] for p in pages for e in p["DatasetEntries"]]
    assert sorted(refs_seen) == sorted(refs) and len(refs_seen) == 11

    normal = lookout.get_paginator("list_dataset_entries").paginate(
        ProjectName=project, DatasetType="test", AnomalyClass="normal", PaginationConfig={"PageSize": 2}
    )
    assert len([e for p in normal for e in p["DatasetEntries"]]) == 6

    from datetime import UTC, datetime, timedelta

    future = datetime.now(UTC) + timedelta(hours=1)
    assert lookout.list_dataset_entries(ProjectName=project, DatasetType="test", AfterCreationDate=future)["DatasetEntries"] == []
    assert len(lookout.list_dataset_entries(ProjectName=project, DatasetType="test", BeforeCreationDate=future)["DatasetEntries"]) == 11

    # A token is bound to its filters.
    first = lookout.list_dataset_entries(ProjectName=project, DatasetType="test", MaxResults=2)
    with pytest.raises(ClientError) as excinfo:
        lookout.list_dataset_entries(ProjectName=project, DatasetType="test", AnomalyClass="anomaly", NextToken=first["NextToken"])
    assert code_of(excinfo) == ("ValidationException", 400)
    with pytest.raises(ClientError) as excinfo:
        lookout.list_dataset_entries(ProjectName=project, DatasetType="test", AnomalyClass="broken")
    assert code_of(excinfo) == ("ValidationException", 400)


def test_delete_dataset_then_project(lookout, project, bucket, bucket_root):
    lookout.create_dataset(ProjectName=project, DatasetType="train")
    ref = put_object(bucket_root, bucket, "d/1.png", png_bytes(seed=700))
    lookout.update_dataset_entries(ProjectName=project, DatasetType="train", Changes=line(ref, 0).encode())
    wait_dataset(lookout, project)
    with pytest.raises(ClientError) as excinfo:
        lookout.delete_project(ProjectName=project)
    assert code_of(excinfo) == ("ConflictException", 409)
    assert "datasets" in excinfo.value.response["Error"]["Message"]

    out = lookout.delete_dataset(ProjectName=project, DatasetType="train")
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 202
    deadline = time.monotonic() + 30
    while True:
        try:
            lookout.describe_dataset(ProjectName=project, DatasetType="train")
        except ClientError as err:
            assert err.response["Error"]["Code"] == "ResourceNotFoundException"
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert lookout.delete_project(ProjectName=project)["ProjectArn"].endswith(f"project/{project}")


def test_file_refs_and_masks(lookout, project, tmp_path):
    image = tmp_path / "scratch.png"
    image.write_bytes(png_bytes(128, 96, seed=800))
    mask = tmp_path / "scratch_mask.png"
    mask.write_bytes(png_bytes(128, 96, seed=801, mode="L"))
    wrong_mask = tmp_path / "wrong_mask.png"
    wrong_mask.write_bytes(png_bytes(64, 64, seed=802, mode="L"))
    lookout.create_dataset(ProjectName=project, DatasetType="train")
    lookout.update_dataset_entries(
        ProjectName=project, DatasetType="train",
        Changes=line(f"file://{image}", 1, **{"anomaly-mask-ref": f"file://{mask}"}).encode(),
    )
    desc = wait_dataset(lookout, project)
    assert desc["Status"] == "UPDATE_COMPLETE", desc
    lookout.update_dataset_entries(
        ProjectName=project, DatasetType="train",
        Changes=line(f"file://{image}", 1, **{"anomaly-mask-ref": f"file://{wrong_mask}"}).encode(),
    )
    desc = wait_dataset(lookout, project)
    assert desc["Status"] == "UPDATE_FAILED_ROLLBACK_COMPLETE"
    assert "64x64 but the image is 128x96" in desc["StatusMessage"]
