"""Training runs from loupe.training.jobs.

The CPU work runs in a worker thread so the consumer keeps heartbeating; the offset is committed
only when the model version is final. If the process dies, the run is replayed on restart and
starts again; after MAX_ATTEMPTS starts that never finished, the version is marked
TRAINING_FAILED instead of looping forever. A version is never left in TRAINING.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

from loupe_common import dataset_messages as dm
from loupe_common.blobs import BlobStore
from loupe_common.buckets import BucketError
from loupe_common.errors import LoupeError
from loupe_common.lookout import DatasetType
from loupe_common.metrics import TRAINING_SECONDS
from loupe_common.topics import DATASET_COMMANDS
from loupe_common.training_messages import TrainingJob

from .dataplan import plan, split
from .models import TRAINED, TRAINING, TRAINING_FAILED, _now
from .patchcore.detector import DetectorConfig
from .store import TrainingState, model_id
from .trainer import TrainingError, train

log = logging.getLogger("loupe.training.jobs")
MAX_ATTEMPTS = 3
PROGRESS_INTERVAL_SECONDS = 1.0


async def run_training(state: TrainingState, job: TrainingJob, config: DetectorConfig | None = None) -> None:
    key = model_id(job.project_name, job.model_version)
    doc = await state.models.find_one({"_id": key})
    if doc is None or doc["status"] != TRAINING or doc.get("job_id") != job.job_id:
        log.info("training job %s for %s has nothing left to do", job.job_id, key)
        return
    attempts = doc.get("attempts", 0) + 1
    if attempts > MAX_ATTEMPTS:
        await _fail(state, key, f"Training was interrupted {MAX_ATTEMPTS} times before it finished "
                                "(the training process stopped or ran out of memory); create the model again")
        return
    await state.models.update_one({"_id": key}, {"$set": {"attempts": attempts, "status_message":
                                  "Starting" if attempts == 1
                                  else f"Restarting after an interruption (attempt {attempts})"}})
    started, outcome = time.monotonic(), "failed"
    try:
        await _train(state, doc, config or DetectorConfig())
        outcome = "trained"
    except TrainingError as exc:
        await _fail(state, key, str(exc))
    except LoupeError as exc:  # e.g. the datasets changed since CreateModel and no longer qualify
        await _fail(state, key, exc.error.message)
    except Exception as exc:  # the version must end in a final status, never stay in TRAINING
        log.exception("training %s failed", key)
        await _fail(state, key, f"Internal error during training: {exc.__class__.__name__}: {exc}")
    finally:
        TRAINING_SECONDS.labels(outcome).observe(time.monotonic() - started)


async def _fail(state: TrainingState, key: str, message: str) -> None:
    await state.models.update_one({"_id": key},
                                  {"$set": {"status": TRAINING_FAILED, "status_message": message[:2000]}})


async def _entries(state: TrainingState, project: str, dataset_type: str, job_id: str) -> list[dict]:
    export_key = f"transfer/exports/{job_id}-{dataset_type}-{uuid.uuid4().hex[:8]}.jsonl"
    cmd = dm.ExportEntries(request_id=job_id, project_name=project, dataset_type=DatasetType(dataset_type),
                           export_key=export_key)
    reply = (await state.datasets.request(DATASET_COMMANDS, cmd, key=project, timeout=120)).unwrap()
    data = await state.blobs.get(reply["key"])
    await state.blobs.delete(reply["key"])
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def _blob_fetcher(blobs: BlobStore, loop: asyncio.AbstractEventLoop):
    def fetch(key: str) -> bytes:
        return asyncio.run_coroutine_threadsafe(blobs.get(key), loop).result(timeout=120)

    return fetch


async def _train(state: TrainingState, doc: dict, config: DetectorConfig) -> None:
    project, version, key = doc["project_name"], doc["version"], doc["_id"]
    datasets = (await state.datasets.request(
        DATASET_COMMANDS, dm.SummarizeDatasets(request_id=doc["job_id"], project_name=project), key=project
    )).unwrap()["datasets"]
    data = plan(project, datasets)  # the datasets may have changed since CreateModel
    train_entries = await _entries(state, project, "train", doc["job_id"])
    if data.separate_test:
        test_entries = await _entries(state, project, "test", doc["job_id"])
    else:
        train_entries, test_entries = split(train_entries, data, salt=f"{project}/{version}")

    loop = asyncio.get_running_loop()
    last = [0.0]

    def progress(message: str, fraction: float) -> None:  # called from the worker thread
        now = time.monotonic()
        if now - last[0] >= PROGRESS_INTERVAL_SECONDS:
            last[0] = now
            text = f"Training: {message} ({round(100 * fraction)}%)"
            asyncio.run_coroutine_threadsafe(
                state.models.update_one({"_id": key, "status": TRAINING}, {"$set": {"status_message": text}}),
                loop,
            )

    output = await asyncio.to_thread(
        train, config=config, train_entries=train_entries, test_entries=test_entries,
        fetch=_blob_fetcher(state.blobs, loop), progress=progress, title=f"{project} model {version}",
    )
    prefix = f"models/{project}/{version}"
    await state.blobs.put(f"{prefix}/model.onnx", output.model_onnx)
    await state.blobs.put(f"{prefix}/model.json", json.dumps(output.sidecar, indent=2).encode())
    await state.blobs.put(f"{prefix}/evaluation-manifest.jsonl", output.evaluation_manifest.encode())
    await state.blobs.put(f"{prefix}/evaluation-result.json",
                          json.dumps(output.evaluation_result, indent=2).encode())
    await state.blobs.put(f"{prefix}/report.html", output.report_html.encode())

    # The evaluation files also go to the OutputConfig location, as Lookout wrote them to S3.
    out_prefix = (doc["output"].get("prefix") or "").strip("/")
    base = f"{out_prefix}/{project}/{version}" if out_prefix else f"{project}/{version}"
    manifest_key, result_key = f"{base}/evaluation-manifest.jsonl", f"{base}/evaluation-result.json"
    bucket = doc["output"]["bucket"]
    try:
        await asyncio.to_thread(state.buckets.write, bucket, manifest_key,
                                output.evaluation_manifest.encode())
        await asyncio.to_thread(state.buckets.write, bucket, result_key,
                                json.dumps(output.evaluation_result, indent=2).encode())
        await asyncio.to_thread(state.buckets.write, bucket, f"{base}/report.html",
                                output.report_html.encode())
    except (BucketError, OSError) as exc:
        raise TrainingError(f"Cannot write the evaluation to s3://{bucket}/{base}: {exc}") from None

    result = output.evaluation_result
    summary = {k: result[k] for k in ("ImageAUROC", "PixelAUROC", "F1Score", "Precision", "Recall",
                                      "Threshold", "ThresholdMethod", "PerformanceMethod", "MaskIoU",
                                      "MaskIoUImages", "ImageScoreRule", "TestImages", "TrainingImages",
                                      "Timings", "ModelKind")}
    summary |= {k: result[k] for k in ("ClassAccuracy", "ClassAccuracyImages", "AnomalyClasses")
                if k in result}
    await state.models.update_one({"_id": key, "status": TRAINING}, {"$set": {
        "status": TRAINED,
        "status_message": (f"Training completed in {output.timings['total_seconds']:.0f} s: "
                           f"{_kind_text(result)}; {data.describe()}"),
        "performance": {k: round(v, 6) for k, v in output.performance.items()},
        "evaluation_manifest": {"Bucket": bucket, "Key": manifest_key},
        "evaluation_result": {"Bucket": bucket, "Key": result_key},
        "evaluation_end_at": _now(),
        "evaluation_summary": summary,
        "artifacts": {name: f"{prefix}/{name}" for name in
                      ("model.onnx", "model.json", "evaluation-manifest.jsonl", "evaluation-result.json",
                       "report.html")},
    }})


def _kind_text(result: dict) -> str:
    """What DescribeModel's StatusMessage says of the model's kind (Lookout's API has no field for it)."""
    if result["ModelKind"] == "classification":
        return "a classification model (no anomaly masks in the datasets)"
    names = ", ".join(c["Name"] for c in result["AnomalyClasses"])
    return f"a segmentation model (anomaly classes: {names})"
