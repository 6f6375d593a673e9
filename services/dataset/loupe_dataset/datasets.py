"""CreateDataset, DescribeDataset, DeleteDataset and UpdateDatasetEntries: the commands answer at
once; the work runs as a job on loupe.dataset.jobs (see jobs.py)."""

from __future__ import annotations

from typing import Protocol

from loupe_common import idempotency
from loupe_common.dataset_messages import (
    CreateDataset,
    DatasetJob,
    DeleteDataset,
    DescribeDataset,
    RemoveDatasetEntries,
    UpdateDatasetEntries,
)
from loupe_common.errors import LoupeError, ResourceType, conflict, not_found
from loupe_common.lookout import (
    BUSY_DATASET_STATUSES,
    DatasetDescription,
    DatasetImageStats,
    DatasetMetadata,
    DatasetStatus,
)
from loupe_common.messages import Reply

from .projects import get_project
from .store import DatasetState, dataset_id
from .timeutil import epoch, now

EMPTY_STATS = {"total": 0, "labeled": 0, "normal": 0, "anomaly": 0}
UPDATABLE = {
    DatasetStatus.CREATE_COMPLETE,
    DatasetStatus.UPDATE_COMPLETE,
    DatasetStatus.UPDATE_FAILED_ROLLBACK_COMPLETE,
}


class JobQueue(Protocol):
    async def __call__(self, job: DatasetJob) -> None: ...


async def get_dataset(state: DatasetState, project_name: str, dataset_type: str) -> dict:
    doc = await state.datasets.find_one({"_id": dataset_id(project_name, dataset_type)})
    if doc is None:
        await get_project(state, project_name)
        raise not_found(
            ResourceType.DATASET,
            dataset_id(project_name, dataset_type),
            f"Project {project_name} has no {dataset_type} dataset",
        )
    return doc


def dataset_metadata(doc: dict) -> DatasetMetadata:
    return DatasetMetadata(
        creation_timestamp=epoch(doc["created_at"]),
        dataset_type=doc["dataset_type"],
        status=doc["status"],
        status_message=doc.get("status_message"),
    )


async def create_dataset(state: DatasetState, cmd: CreateDataset, enqueue: JobQueue) -> Reply:
    source = cmd.dataset_source.wire() if cmd.dataset_source else None
    manifest = (
        cmd.dataset_source.ground_truth_manifest.s3_object
        if cmd.dataset_source and cmd.dataset_source.ground_truth_manifest
        else None
    )

    async def work() -> Reply:
        await get_project(state, cmd.project_name)
        key = dataset_id(cmd.project_name, cmd.dataset_type)
        existing = await state.datasets.find_one({"_id": key})
        if existing is not None and existing.get("job_id") != cmd.request_id:
            raise conflict(
                ResourceType.DATASET, key,
                f"Project {cmd.project_name} already has a {cmd.dataset_type} dataset",
            )
        job = DatasetJob(job_id=cmd.request_id, kind="import_manifest", project_name=cmd.project_name,
                         dataset_type=cmd.dataset_type, manifest=manifest) if manifest else None
        if existing is None:
            # A command replayed after a crash finds its own dataset (same job id) and carries on.
            created = now()
            existing = {
                "_id": key,
                "project_name": cmd.project_name,
                "dataset_type": cmd.dataset_type.value,
                "created_at": created,
                "updated_at": created,
                "stats": EMPTY_STATS,
                "job_id": cmd.request_id,
                "status": DatasetStatus.CREATE_IN_PROGRESS if manifest else DatasetStatus.CREATE_COMPLETE,
                "status_message": "Importing the manifest" if manifest else "Created an empty dataset",
                **({"job": job.model_dump(mode="json")} if job else {}),
            }
            await state.datasets.insert_one(existing)
        if job is not None and existing["status"] == DatasetStatus.CREATE_IN_PROGRESS:
            await enqueue(job)
        return Reply.success({"DatasetMetadata": dataset_metadata(existing).wire()}, status=202)

    params = {"ProjectName": cmd.project_name, "DatasetType": cmd.dataset_type, "DatasetSource": source}
    return await idempotency.once(state.db, cmd, params=params, resource_type=ResourceType.DATASET, work=work)


async def describe_dataset(state: DatasetState, cmd: DescribeDataset) -> Reply:
    doc = await get_dataset(state, cmd.project_name, cmd.dataset_type)
    description = DatasetDescription(
        project_name=doc["project_name"],
        dataset_type=doc["dataset_type"],
        creation_timestamp=epoch(doc["created_at"]),
        last_updated_timestamp=epoch(doc["updated_at"]),
        status=doc["status"],
        status_message=doc.get("status_message"),
        image_stats=DatasetImageStats(**doc["stats"]),
    )
    return Reply.success({"DatasetDescription": description.wire()})


async def _start_job(
    state: DatasetState, doc: dict, *, job: DatasetJob, status: DatasetStatus, message: str, allowed: set
) -> None:
    """Move an idle dataset to a busy status, keeping the job with it (requeued if its message is
    lost: loupe_common.requeue); ConflictException if another job holds it."""
    if doc.get("job_id") == job.job_id and doc["status"] == status:
        return  # replayed command
    result = await state.datasets.update_one(
        {"_id": doc["_id"], "status": {"$in": [s.value for s in allowed]}},
        {"$set": {"status": status, "status_message": message, "job_id": job.job_id,
                  "job": job.model_dump(mode="json"), "updated_at": now()}},
    )
    if result.modified_count != 1:
        raise conflict(
            ResourceType.DATASET,
            doc["_id"],
            f"Dataset {doc['_id']} is {doc['status']}; wait until it finishes",
        )


async def update_dataset_entries(
    state: DatasetState, cmd: UpdateDatasetEntries, enqueue: JobQueue
) -> Reply:
    async def work() -> Reply:
        job = DatasetJob(job_id=cmd.request_id, kind="update_entries", project_name=cmd.project_name,
                         dataset_type=cmd.dataset_type, changes_key=cmd.changes_key)
        try:
            doc = await get_dataset(state, cmd.project_name, cmd.dataset_type)
            await _start_job(state, doc, job=job, status=DatasetStatus.UPDATE_IN_PROGRESS,
                             message="Updating dataset entries", allowed=UPDATABLE)
        except LoupeError:
            await state.blobs.delete(cmd.changes_key)  # refused: nothing will read the changes
            raise
        await enqueue(job)
        return Reply.success({"Status": DatasetStatus.UPDATE_IN_PROGRESS.value}, status=202)

    params = {"ProjectName": cmd.project_name, "DatasetType": cmd.dataset_type, "Changes": cmd.changes_sha256}
    async def drop_retry_copy() -> None:
        await state.blobs.delete(cmd.changes_key)  # a retry answered from memory: its copy is spare

    return await idempotency.once(state.db, cmd, params=params, resource_type=ResourceType.DATASET,
                                  work=work, on_replay=drop_retry_copy)


async def remove_dataset_entries(state: DatasetState, cmd: RemoveDatasetEntries, enqueue: JobQueue) -> Reply:
    """A job like UpdateDatasetEntries (the dataset is busy meanwhile, then UPDATE_COMPLETE)."""
    doc = await get_dataset(state, cmd.project_name, cmd.dataset_type)
    job = DatasetJob(job_id=cmd.request_id, kind="remove_entries", project_name=cmd.project_name,
                     dataset_type=cmd.dataset_type, source_refs=sorted(set(cmd.source_refs)))
    await _start_job(state, doc, job=job, status=DatasetStatus.UPDATE_IN_PROGRESS,
                     message=f"Removing {len(job.source_refs or [])} entries", allowed=UPDATABLE)
    await enqueue(job)
    return Reply.success({"Status": DatasetStatus.UPDATE_IN_PROGRESS.value}, status=202)


async def delete_dataset(state: DatasetState, cmd: DeleteDataset, enqueue: JobQueue) -> Reply:
    async def work() -> Reply:
        doc = await get_dataset(state, cmd.project_name, cmd.dataset_type)
        idle = {s for s in DatasetStatus if s not in BUSY_DATASET_STATUSES}
        job = DatasetJob(job_id=cmd.request_id, kind="delete_dataset", project_name=cmd.project_name,
                         dataset_type=cmd.dataset_type)
        await _start_job(state, doc, job=job, status=DatasetStatus.DELETE_IN_PROGRESS,
                         message="Deleting the dataset", allowed=idle)
        await enqueue(job)
        return Reply.success({}, status=202)

    params = {"ProjectName": cmd.project_name, "DatasetType": cmd.dataset_type}
    return await idempotency.once(state.db, cmd, params=params, resource_type=ResourceType.DATASET, work=work)
