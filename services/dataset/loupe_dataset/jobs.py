"""Dataset jobs: manifest import, entry updates and dataset deletion.

A job is idempotent: images are content-addressed and entries are upserted by source-ref, so a
job replayed after a crash (its offset was not committed) finishes the same way. A job whose
dataset has moved on (another job id, or no longer busy) is skipped.
"""

from __future__ import annotations

import asyncio
import logging

from loupe_common.blobs import BlobNotFound
from loupe_common import dataset_files
from loupe_common.dataset_files import blob_prefix
from loupe_common.dataset_messages import DatasetJob
from loupe_common.lookout import BUSY_DATASET_STATUSES, DatasetStatus

from .manifest import ImportReport, entry_document, read_entries
from .sources import SourceError
from .store import DatasetState, dataset_id
from .timeutil import now

log = logging.getLogger("loupe.dataset.jobs")
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
WRITE_BATCH = 50  # entries per insert_many
WRITE_PAUSE = 0.01  # seconds between batches: room for the commands of other callers


async def run_job(state: DatasetState, job: DatasetJob) -> None:
    doc = await state.datasets.find_one({"_id": dataset_id(job.project_name, job.dataset_type)})
    if doc is None or doc.get("job_id") != job.job_id or doc["status"] not in BUSY_DATASET_STATUSES:
        log.info("job %s (%s) has nothing left to do", job.job_id, job.kind)
        return
    try:
        if job.kind == "import_manifest":
            await _import_manifest(state, doc, job)
        elif job.kind == "update_entries":
            await _update_entries(state, doc, job)
        elif job.kind == "remove_entries":
            await _remove_entries(state, doc, job)
        else:
            await _delete_dataset(state, doc)
    except Exception as exc:  # a job must end in a visible status, never hang in *_IN_PROGRESS
        log.exception("job %s failed", job.job_id)
        failed = {
            "import_manifest": DatasetStatus.CREATE_FAILED,
            "update_entries": DatasetStatus.UPDATE_FAILED_ROLLBACK_COMPLETE,
            "remove_entries": DatasetStatus.UPDATE_FAILED_ROLLBACK_COMPLETE,
            "delete_dataset": DatasetStatus.DELETE_FAILED,
        }[job.kind]
        await _finish(state, doc, failed, f"Internal error: {exc.__class__.__name__}: {exc}")


async def _finish(state: DatasetState, doc: dict, status: DatasetStatus, message: str) -> None:
    await state.datasets.update_one(
        {"_id": doc["_id"]},
        {"$set": {"status": status, "status_message": message[:4096], "updated_at": now(),
                  "stats": await _stats(state, doc)}},
    )


async def _stats(state: DatasetState, doc: dict) -> dict[str, int]:
    scope = {"project_name": doc["project_name"], "dataset_type": doc["dataset_type"]}
    normal = await state.entries.count_documents({**scope, "label": 0})
    anomaly = await state.entries.count_documents({**scope, "label": 1})
    total = await state.entries.count_documents(scope)
    return {"total": total, "labeled": normal + anomaly, "normal": normal, "anomaly": anomaly}


async def _import_manifest(state: DatasetState, doc: dict, job: DatasetJob) -> None:
    if job.manifest is None:
        raise ValueError(f"import job {job.job_id} has no manifest")
    where = f"s3://{job.manifest.bucket}/{job.manifest.key}"
    try:
        data = await state.sources.read(where, max_bytes=MAX_MANIFEST_BYTES)
    except SourceError as exc:
        await _finish(state, doc, DatasetStatus.CREATE_FAILED, f"Cannot read the manifest: {exc}")
        return
    report = await read_entries(data, state.sources, state.blobs,
                                blob_prefix(job.project_name, job.dataset_type))
    if not report.entries:
        reason = report.failure_text() if report.failures else "the manifest has no JSON Lines"
        await _finish(state, doc, DatasetStatus.CREATE_FAILED, f"No image could be imported: {reason}")
        return
    await _upsert(state, doc, report)
    message = f"Imported {len(report.entries)} of {report.total_lines} manifest lines"
    if report.notes:
        message += f"; {len(report.notes)} imported with a note: {report.note_text()}"
    if report.failures:
        message += f"; {len(report.failures)} lines were refused: {report.failure_text()}"
    await _finish(state, doc, DatasetStatus.CREATE_COMPLETE, message)


async def _update_entries(state: DatasetState, doc: dict, job: DatasetJob) -> None:
    if job.changes_key is None:
        raise ValueError(f"update job {job.job_id} has no changes_key")
    try:
        data = await state.blobs.get(job.changes_key)
    except BlobNotFound:
        await _finish(state, doc, DatasetStatus.UPDATE_FAILED_ROLLBACK_COMPLETE, "The changes were lost")
        return
    prefix = blob_prefix(job.project_name, job.dataset_type)
    report = await read_entries(data, state.sources, state.blobs, prefix)
    if report.failures or not report.entries:
        # All or nothing: drop what this update copied in and leave the entries as they were.
        await _set_status(state, doc, DatasetStatus.UPDATE_FAILED_ROLLBACK_IN_PROGRESS, "Rolling back")
        for item in report.entries:
            for key in (item.blob_key, item.mask_key):
                if key:
                    await _delete_if_unreferenced(state, doc, key)
        reason = report.failure_text() or "the changes hold no JSON Lines"
        await _finish(
            state, doc, DatasetStatus.UPDATE_FAILED_ROLLBACK_COMPLETE,
            f"No entry was changed; {len(report.failures)} of {report.total_lines} lines were refused: "
            f"{reason}",
        )
    else:
        added, replaced = await _upsert(state, doc, report)
        message = f"Added {added} and replaced {replaced} entries"
        if report.notes:
            message += f"; {len(report.notes)} with a note: {report.note_text()}"
        await _finish(state, doc, DatasetStatus.UPDATE_COMPLETE, message)
    await state.blobs.delete(job.changes_key)


async def _upsert(state: DatasetState, doc: dict, report: ImportReport) -> tuple[int, int]:
    """Add or replace entries by source-ref; returns (added, replaced). New entries go in batches,
    replaced ones by _id, with a pause between writes for other callers' commands: the embedded
    store scans the collection on every filtered write and unique check (2,000 single upserts took
    20 s there, with DescribeDataset unanswered for 19.5 s of it; batched and paused: 0.3 s at most)."""
    scope = {"project_name": doc["project_name"], "dataset_type": doc["dataset_type"]}
    refs = [item.line.source_ref for item in report.entries]
    previous = {
        e["source_ref"]: e
        async for e in state.entries.find({**scope, "source_ref": {"$in": refs}},
                                          {"source_ref": 1, "blob_key": 1, "mask_key": 1})
    }
    fresh = [entry_document(doc["project_name"], doc["dataset_type"], item)
             for item in report.entries if item.line.source_ref not in previous]
    for start in range(0, len(fresh), WRITE_BATCH):
        await state.entries.insert_many(fresh[start : start + WRITE_BATCH])
        await asyncio.sleep(WRITE_PAUSE)
    for item in report.entries:
        old = previous.get(item.line.source_ref)
        if old is None:
            continue
        new = entry_document(doc["project_name"], doc["dataset_type"], item)
        new.pop("created_at")  # a replaced entry keeps when it was first added
        await state.entries.update_one({"_id": old["_id"]}, {"$set": new})
        await asyncio.sleep(WRITE_PAUSE)
    for old in previous.values():
        for key in (old.get("blob_key"), old.get("mask_key")):
            if key:
                await _delete_if_unreferenced(state, doc, key)
    return len(fresh), len(previous)


async def _remove_entries(state: DatasetState, doc: dict, job: DatasetJob) -> None:
    """Idempotent: a replay finds fewer (or no) entries and removes what is left."""
    scope = {"project_name": doc["project_name"], "dataset_type": doc["dataset_type"]}
    refs = job.source_refs or []
    found = [e async for e in state.entries.find({**scope, "source_ref": {"$in": refs}},
                                                  {"_id": 1, "blob_key": 1, "mask_key": 1})]
    for entry in found:
        await state.entries.delete_one({"_id": entry["_id"]})
        for key in (entry.get("blob_key"), entry.get("mask_key")):
            if key:
                await _delete_if_unreferenced(state, doc, key)
    missing = len(refs) - len(found)
    message = f"Removed {len(found)} entries" + (f"; {missing} source-refs were not in the dataset"
                                                 if missing else "")
    await _finish(state, doc, DatasetStatus.UPDATE_COMPLETE, message)


async def _delete_if_unreferenced(state: DatasetState, doc: dict, key: str) -> None:
    scope = {"project_name": doc["project_name"], "dataset_type": doc["dataset_type"]}
    if not await state.entries.find_one({**scope, "$or": [{"blob_key": key}, {"mask_key": key}]}, {"_id": 1}):
        await state.blobs.delete(key)
        prefix = blob_prefix(doc["project_name"], doc["dataset_type"])
        name = dataset_files.file_name(prefix, key)
        if name:
            await state.blobs.delete(dataset_files.thumbnail_key(prefix, name))


async def _set_status(state: DatasetState, doc: dict, status: DatasetStatus, message: str) -> None:
    await state.datasets.update_one(
        {"_id": doc["_id"]}, {"$set": {"status": status, "status_message": message, "updated_at": now()}}
    )


async def _delete_dataset(state: DatasetState, doc: dict) -> None:
    await state.entries.delete_many({"project_name": doc["project_name"],
                                     "dataset_type": doc["dataset_type"]})
    await state.blobs.delete_prefix(blob_prefix(doc["project_name"], doc["dataset_type"]))
    await state.datasets.delete_one({"_id": doc["_id"]})
