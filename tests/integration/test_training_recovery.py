"""Training survives a crash: a run interrupted mid-way (the process died, its Kafka offset was
never committed) is replayed and finishes; a run interrupted too often ends TRAINING_FAILED with a
reason; a replayed finished run changes nothing. The dataset service runs for real; the training
job code runs in this process against it over the real broker."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from helpers import make_client, pattern_png, put_object, wait_dataset
from loupe_common.blobs import open_blob_store
from loupe_common.buckets import open_buckets
from loupe_common.db import connect
from loupe_common.kafka import RequestClient, ensure_topics, make_broker
from loupe_common.settings import Settings
from loupe_common.training_messages import TrainingJob
from loupe_training.jobs import MAX_ATTEMPTS, run_training
from loupe_training.patchcore.detector import DetectorConfig
from loupe_training.store import TrainingState, ensure_indexes

SMALL = DetectorConfig(image_size=128, bank_size=2048, top_k=16, loo_images=10)


@pytest.fixture(scope="module")
def dataset_only(tmp_path_factory):
    from loupe_local.stack import Stack

    with Stack.on_free_ports(tmp_path_factory.mktemp("recovery"), services=("dataset",)) as stack:
        yield stack


@pytest.fixture
async def state(dataset_only):
    settings = Settings(_env_file=None, kafka_bootstrap=dataset_only.kafka_bootstrap, data_dir=dataset_only.data_dir)
    replies = f"loupe.replies.test-{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [(replies, 1)])
    broker = make_broker(settings, client_id="test-training")
    client = RequestClient(broker, settings, replies)
    await broker.start()
    training = TrainingState(settings=settings, db=connect(settings, database=f"recovery-{uuid.uuid4().hex[:6]}"),
                             blobs=open_blob_store(settings), buckets=open_buckets(settings), datasets=client)
    await ensure_indexes(training)
    yield training
    await broker.stop()


def model_doc(project: str, version: int, attempts: int) -> dict:
    return {"_id": f"{project}/{version}", "project_name": project, "version": version, "arn": "arn",
            "output": {"bucket": "recovery-out", "prefix": None}, "status": "TRAINING",
            "status_message": "Training: extracting features (40%)", "created_at": datetime.now(UTC),
            "job_id": f"job-{version}", "attempts": attempts, "tags": {}}


async def test_interrupted_runs_resume_or_fail_visibly(state, dataset_only):
    lookout = make_client("lookoutvision", dataset_only.endpoint_url)
    project = f"rec-{uuid.uuid4().hex[:6]}"
    lookout.create_project(ProjectName=project)
    root = dataset_only.data_dir / "s3"
    lines = [json.dumps({"source-ref": put_object(root, "rec", f"{project}/{i}.png", pattern_png(i)), "anomaly-label": 0})
             for i in range(12)]
    lines += [json.dumps({"source-ref": put_object(root, "rec", f"{project}/a{i}.png", pattern_png(50 + i, True)),
                          "anomaly-label": 1}) for i in range(2)]
    lookout.create_dataset(ProjectName=project, DatasetType="train")
    lookout.update_dataset_entries(ProjectName=project, DatasetType="train", Changes="\n".join(lines).encode())
    assert wait_dataset(lookout, project)["Status"] == "UPDATE_COMPLETE"

    # Version 1 was being trained when the process died once: the replayed job resumes it.
    await state.models.insert_one(model_doc(project, 1, attempts=1))
    job = TrainingJob(job_id="job-1", project_name=project, model_version="1")
    await run_training(state, job, SMALL)
    doc = await state.models.find_one({"_id": f"{project}/1"})
    assert doc["status"] == "TRAINED", doc["status_message"]
    assert doc["attempts"] == 2
    assert set(doc["performance"]) == {"F1Score", "Precision", "Recall"}

    # The same job delivered again (after a crash before the commit) trains nothing twice.
    await run_training(state, job, SMALL)
    assert await state.models.find_one({"_id": f"{project}/1"}) == doc

    # Version 2 died MAX_ATTEMPTS times: it is failed with a reason, not retried forever.
    await state.models.insert_one(model_doc(project, 2, attempts=MAX_ATTEMPTS))
    await run_training(state, TrainingJob(job_id="job-2", project_name=project, model_version="2"), SMALL)
    failed = await state.models.find_one({"_id": f"{project}/2"})
    assert failed["status"] == "TRAINING_FAILED"
    assert "interrupted 3 times" in failed["status_message"]


async def test_unreadable_image_fails_with_a_message(state, dataset_only):
    lookout = make_client("lookoutvision", dataset_only.endpoint_url)
    project = f"bad-{uuid.uuid4().hex[:6]}"
    lookout.create_project(ProjectName=project)
    root = dataset_only.data_dir / "s3"
    refs = [put_object(root, "rec", f"{project}/{i}.png", pattern_png(100 + i)) for i in range(12)]
    lookout.create_dataset(ProjectName=project, DatasetType="train")
    lookout.update_dataset_entries(ProjectName=project, DatasetType="train",
                                   Changes="\n".join(json.dumps({"source-ref": r, "anomaly-label": 0}) for r in refs).encode())
    assert wait_dataset(lookout, project)["Status"] == "UPDATE_COMPLETE"
    # Damage one stored copy behind the dataset service's back (disk corruption).
    blob = next((dataset_only.data_dir / "blobs" / "datasets" / project / "train").glob("*.png"))
    blob.write_bytes(b"\x89PNG\r\n\x1a\ncorrupt")
    await state.models.insert_one(model_doc(project, 1, attempts=0))
    await run_training(state, TrainingJob(job_id="job-1", project_name=project, model_version="1"), SMALL)
    doc = await state.models.find_one({"_id": f"{project}/1"})
    assert doc["status"] == "TRAINING_FAILED"
    assert "could not be read" in doc["status_message"] and project in doc["status_message"]
