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
    unclassified = put_object(bucket_root, bucket, "img/u0.png", png_bytes(seed=98))
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
            line(unclassified, 1).replace('"anomaly"', '"cracked"'),  # line 13: comes in unlabelled
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
    assert desc["ImageStats"] == {"Total": 6, "Labeled": 5, "Normal": 4, "Anomaly": 1}
    message = desc["StatusMessage"]
    assert "Imported 6 of 13" in message and "'cracked' is neither 'normal' nor 'anomaly'" in message
    for number in (6, 7, 8, 9, 10, 11, 12, 13):
        assert f"line {number}:" in message, (number, message)
    assert "64x64" in message and "not found" in message and "duplicate" in message

    entries = [
        json.loads(e)
        for page in lookout.get_paginator("list_dataset_entries").paginate(ProjectName=project, DatasetType="train")
        for e in page["DatasetEntries"]
    ]
    assert sorted(e["source-ref"] for e in entries) == sorted(refs + [anomalous, unclassified])


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


def test_file_refs_and_masks(lookout, stack, project):
    tmp_path = stack.data_dir / "files" / project  # file:// reads only under LOUPE_FILE_REF_ROOTS
    tmp_path.mkdir(parents=True)
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


def classified(ref: str, key: str, value, class_name: str) -> dict:
    """A classification line as AWS's tools write it."""
    return {"source-ref": ref, key: value, f"{key}-metadata": {
        "confidence": 1, "job-name": f"labeling-job/{key}", "class-name": class_name, "human-annotated": "yes",
        "creation-date": "2021-10-12T14:16:45.668", "type": "groundtruth/image-classification"}}


def colour_mask(width: int, height: int, regions: list[tuple[str, tuple[int, int, int, int]]],
                background: str = "#ffffff") -> bytes:
    import io

    from PIL import Image, ImageDraw

    mask = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(mask)
    for color, box in regions:
        draw.rectangle(box, fill=color)
    out = io.BytesIO()
    mask.save(out, "PNG")
    return out.getvalue()


def test_manifests_as_aws_tools_write_them(lookout, project, bucket, bucket_root):
    """Every shape AWS's documentation and tools wrote imports with the label its class-name
    gives; what cannot be classified comes in unlabelled with the reason; ListDatasetEntries gives
    lines that import again unchanged."""
    ref = [put_object(bucket_root, bucket, f"aws/{i}.png", png_bytes(128, 96, seed=900 + i)) for i in range(8)]
    mask = put_object(bucket_root, bucket, "aws/mask0.png",
                      colour_mask(128, 96, [("#2ca02c", (10, 10, 40, 30)), ("#1f77b4", (60, 50, 90, 80))]))
    bad_mask = put_object(bucket_root, bucket, "aws/mask1.png", colour_mask(128, 96, [("#ff0000", (5, 5, 20, 20))]))
    color_map = {"0": {"class-name": "BACKGROUND", "hex-color": "#ffffff", "confidence": 0.0},
                 "1": {"class-name": "scratch", "hex-color": "#2ca02c", "confidence": 0.0},
                 "2": {"class-name": "dent", "hex-color": "#1f77b4", "confidence": 0.0}}

    def segmented(image: str, mask_ref: str) -> dict:
        return {**classified(image, "anomaly-label", 1, "anomaly"), "anomaly-mask-ref": mask_ref,
                "anomaly-mask-ref-metadata": {"internal-color-map": color_map, "type": "groundtruth/semantic-segmentation",
                                              "human-annotated": "yes", "creation-date": "2021-11-23T20:31:57.758889",
                                              "job-name": "labeling-job/segmentation-job"}}

    lines = [
        classified(ref[0], "anomaly-label", 1, "normal"),   # the developer guide's sample: normal
        classified(ref[1], "auto-label", 1, "normal"),      # AWS's helper library and workshop
        classified(ref[2], "auto-label", 0, "anomaly"),
        classified(ref[3], "anomaly-label", "0", "normal"),  # AWS's CSV-to-manifest tool
        classified(ref[4], "anomaly-label", "1", "anomaly"),
        segmented(ref[5], mask),                            # the developer guide's segmentation sample
        classified(ref[6], "anomaly-label", 1, "cracked"),  # cannot be classified: unlabelled
        segmented(ref[7], bad_mask),                        # a colour its map does not name: refused
    ]
    put_object(bucket_root, bucket, "aws/train.manifest", "\n".join(json.dumps(d) for d in lines).encode())
    lookout.create_dataset(ProjectName=project, DatasetType="train", DatasetSource={
        "GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Key": "aws/train.manifest"}}})
    desc = wait_dataset(lookout, project)
    assert desc["Status"] == "CREATE_COMPLETE", desc
    assert desc["ImageStats"] == {"Total": 7, "Labeled": 6, "Normal": 3, "Anomaly": 3}, desc
    message = desc["StatusMessage"]
    assert "line 7: 'anomaly-label-metadata' class-name 'cracked' is neither" in message, message
    assert "line 8:" in message and "#ff0000" in message, message

    def entries(project_name: str) -> dict[str, dict]:
        found = [json.loads(e) for page in lookout.get_paginator("list_dataset_entries").paginate(
            ProjectName=project_name, DatasetType="train") for e in page["DatasetEntries"]]
        return {e["source-ref"]: e for e in found}

    listed = entries(project)
    assert set(listed) == set(ref[:7])
    assert listed[ref[5]]["anomaly-mask-ref-metadata"]["internal-color-map"] == color_map
    for image, want in ((ref[0], 0), (ref[1], 0), (ref[2], 1), (ref[5], 1)):
        filtered = lookout.list_dataset_entries(ProjectName=project, DatasetType="train",
                                                AnomalyClass="anomaly" if want else "normal")["DatasetEntries"]
        assert image in {json.loads(e)["source-ref"] for e in filtered}, (image, want)

    # Round trip: the listed lines, imported again unchanged, give the same dataset.
    again = f"{project}-again"
    lookout.create_project(ProjectName=again)
    put_object(bucket_root, bucket, "aws/again.manifest", "\n".join(json.dumps(e) for e in listed.values()).encode())
    lookout.create_dataset(ProjectName=again, DatasetType="train", DatasetSource={
        "GroundTruthManifest": {"S3Object": {"Bucket": bucket, "Key": "aws/again.manifest"}}})
    assert wait_dataset(lookout, again)["ImageStats"] == desc["ImageStats"]
    assert entries(again) == listed
