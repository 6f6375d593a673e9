"""Dataset jobs are replay-safe: a job redelivered after a crash (offset not committed) finishes
the same way, never duplicating entries. Runs the real job code on the embedded store."""

from __future__ import annotations

import json

from helpers import png_bytes, put_object
from loupe_common import dataset_files
from loupe_common.dataset_messages import DatasetJob
from loupe_common.db import connect
from loupe_common.lookout import DatasetStatus, InputS3Object
from loupe_common.settings import Settings
from loupe_common.blobs import LocalBlobStore
from loupe_dataset.jobs import run_job
from loupe_dataset.sources import SourceReader
from loupe_dataset.store import DatasetState, ensure_indexes
from loupe_dataset.timeutil import now


async def make_state(tmp_path) -> DatasetState:
    settings = Settings(_env_file=None, data_dir=tmp_path)
    state = DatasetState(settings=settings, db=connect(settings, database=f"t{id(tmp_path)}"),
                         blobs=LocalBlobStore(tmp_path / "blobs"), sources=SourceReader(settings))
    await ensure_indexes(state)
    return state


async def test_import_job_replayed_gives_the_same_dataset(tmp_path):
    state = await make_state(tmp_path)
    root = state.settings.bucket_root
    lines = [json.dumps({"source-ref": put_object(root, "bkt", f"{i}.png", png_bytes(seed=i)), "anomaly-label": 0})
             for i in range(4)]
    put_object(root, "bkt", "m.manifest", "\n".join(lines).encode())
    await state.datasets.insert_one({
        "_id": "p/train", "project_name": "p", "dataset_type": "train", "created_at": now(),
        "updated_at": now(), "stats": {}, "job_id": "job-1", "status": DatasetStatus.CREATE_IN_PROGRESS,
    })
    job = DatasetJob(job_id="job-1", kind="import_manifest", project_name="p", dataset_type="train",
                     manifest=InputS3Object(bucket="bkt", key="m.manifest"))

    # First delivery "crashes" after the entries were written: put the status back as it was.
    await run_job(state, job)
    await state.datasets.update_one({"_id": "p/train"}, {"$set": {"status": DatasetStatus.CREATE_IN_PROGRESS}})
    await run_job(state, job)  # the redelivery
    doc = await state.datasets.find_one({"_id": "p/train"})
    assert doc["status"] == DatasetStatus.CREATE_COMPLETE
    assert doc["stats"] == {"total": 4, "labeled": 4, "normal": 4, "anomaly": 0}
    assert await state.entries.count_documents({}) == 4
    blobs = sorted(p.name for p in (tmp_path / "blobs").rglob("*.png"))
    assert len(blobs) == 4

    # A third delivery of a finished job changes nothing.
    before = await state.datasets.find_one({"_id": "p/train"})
    await run_job(state, job)
    assert await state.datasets.find_one({"_id": "p/train"}) == before


async def test_stale_job_is_skipped(tmp_path):
    state = await make_state(tmp_path)
    await state.datasets.insert_one({
        "_id": "p/train", "project_name": "p", "dataset_type": "train", "created_at": now(),
        "updated_at": now(), "stats": {}, "job_id": "newer", "status": DatasetStatus.UPDATE_IN_PROGRESS,
    })
    await state.blobs.put("transfer/changes/x.jsonl", b'{"source-ref": "s3://b/none.png"}')
    await run_job(state, DatasetJob(job_id="older", kind="update_entries", project_name="p",
                                    dataset_type="train", changes_key="transfer/changes/x.jsonl"))
    doc = await state.datasets.find_one({"_id": "p/train"})
    assert doc["status"] == DatasetStatus.UPDATE_IN_PROGRESS and doc["job_id"] == "newer"


async def test_removing_entries_deletes_their_unshared_images_and_replays_safely(tmp_path):
    state = await make_state(tmp_path)
    root = state.settings.bucket_root
    shared = png_bytes(seed=99)  # two source-refs, one image: its blob stays while one entry uses it
    lines = [json.dumps({"source-ref": put_object(root, "bkt", f"{i}.png", png_bytes(seed=i)), "anomaly-label": 0})
             for i in range(3)]
    lines += [json.dumps({"source-ref": put_object(root, "bkt", f"s{i}.png", shared), "anomaly-label": 1})
              for i in range(2)]
    put_object(root, "bkt", "m.manifest", "\n".join(lines).encode())
    await state.datasets.insert_one({
        "_id": "p/train", "project_name": "p", "dataset_type": "train", "created_at": now(),
        "updated_at": now(), "stats": {}, "job_id": "job-1", "status": DatasetStatus.CREATE_IN_PROGRESS,
    })
    await run_job(state, DatasetJob(job_id="job-1", kind="import_manifest", project_name="p", dataset_type="train",
                                    manifest=InputS3Object(bucket="bkt", key="m.manifest")))
    entry = await state.entries.find_one({"source_ref": "s3://bkt/0.png"})
    prefix = dataset_files.blob_prefix("p", "train")
    await state.blobs.put(dataset_files.thumbnail_key(prefix, dataset_files.file_name(prefix, entry["blob_key"])),
                          b"thumb")  # what the gateway's file route leaves after showing it
    removal = DatasetJob(job_id="job-2", kind="remove_entries", project_name="p", dataset_type="train",
                         source_refs=["s3://bkt/0.png", "s3://bkt/s0.png", "s3://bkt/missing.png"])
    await state.datasets.update_one({"_id": "p/train"}, {"$set": {"status": DatasetStatus.UPDATE_IN_PROGRESS,
                                                                   "job_id": "job-2"}})
    await run_job(state, removal)
    await state.datasets.update_one({"_id": "p/train"}, {"$set": {"status": DatasetStatus.UPDATE_IN_PROGRESS}})
    await run_job(state, removal)  # a redelivery after a crash finds nothing more to remove
    doc = await state.datasets.find_one({"_id": "p/train"})
    assert doc["status"] == DatasetStatus.UPDATE_COMPLETE
    assert doc["stats"] == {"total": 3, "labeled": 3, "normal": 2, "anomaly": 1}
    assert "3 source-refs were not in the dataset" in doc["status_message"]  # the replay's own count
    names = sorted(p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file())
    assert entry["blob_key"].rsplit("/", 1)[1] not in names  # its image and its thumbnail are gone
    assert not any(n.endswith(".jpg") for n in names)
    assert len([n for n in names if n.endswith(".png")]) == 3  # 1.png, 2.png and the shared image
