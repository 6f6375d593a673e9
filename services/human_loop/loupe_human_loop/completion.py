"""A loop with all its answers: the consolidated label (majority, agreement recorded), output.json
in A2I's shape at OutputS3Uri, and -- when the flow definition asks for it -- the reviewed image
added to the project's dataset through the dataset service's own commands (the sweeper retries
that step until it is done or visibly failed)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import logging
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import numpy as np
from PIL import Image

from loupe_common import dataset_messages as dm
from loupe_common import human_loop_messages as m
from loupe_common import training_messages as tm
from loupe_common.errors import LoupeError
from loupe_common.topics import DATASET_COMMANDS, TRAINING_COMMANDS

from .loops import iso, move
from .store import HumanLoopState, now

log = logging.getLogger("loupe.human-loop.completion")
FEEDBACK_ATTEMPTS = 5
FEEDBACK_STALE_SECONDS = 300  # an `adding` claim older than this was cut short by a crash
RETRAIN_RETRY_SECONDS = 3


def consolidate(labels: list[str]) -> dict[str, Any]:
    """Majority vote; a tie (two reviewers disagreeing) counts as anomaly, the cautious reading."""
    votes = Counter(labels)
    top = max(votes.values())
    winners = sorted(label for label, count in votes.items() if count == top)
    label = winners[0] if len(winners) == 1 else "anomaly"
    return {"label": label, "agreement": round(votes[label] / len(labels), 4), "votes": dict(votes),
            "tie": len(winners) > 1}


def merge_masks(masks: list[bytes]) -> bytes:
    """Pixels painted by at least half of the reviewers who painted, as a red-on-black PNG."""
    painted = [np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))[..., 0] > 127 for data in masks]
    agreed = np.mean(painted, axis=0) >= 0.5
    rgb = np.zeros((*agreed.shape, 3), np.uint8)
    rgb[agreed] = (255, 0, 0)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def _split(uri: str) -> tuple[str, str]:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return bucket, key


async def _write(state: HumanLoopState, uri: str, data: bytes) -> None:
    bucket, key = _split(uri)
    await asyncio.to_thread(state.buckets.write, bucket, key, data)


async def complete(state: HumanLoopState, loop: dict[str, Any]) -> dict[str, Any]:
    """Write output.json and move the loop to Completed (or Failed if the output cannot be
    written), retrying while other changes race it; returns the loop as it ends up."""
    while loop["status"] == m.IN_PROGRESS and len(loop["answers"]) >= loop["task_count"]:
        flow = await state.flows.find_one({"_id": loop["flow_name"]})
        try:
            consolidated, output = await _output(state, loop, flow)
            await _write(state, loop["output_s3_uri"], json.dumps(output, indent=2).encode())
        except Exception as exc:  # noqa: BLE001 - the loop fails visibly instead of hanging InProgress
            log.exception("output of %s failed", loop["_id"])
            moved = await move(state, loop, m.FAILED,
                               failure=("InternalError", f"Writing the output failed: {exc}"[:1024]))
        else:
            wants_feedback = bool(flow and flow["spec"].get("DatasetFeedback")
                                  and loop["task"].get("image_key"))
            moved = await move(state, loop, m.COMPLETED, extra={
                "consolidated": consolidated, "complete_pending": False,
                "feedback": {"state": "pending", "attempts": 0} if wants_feedback else None})
        if moved is not None:
            return moved
        loop = await state.loops.find_one({"_id": loop["_id"]}) or loop  # changed meanwhile: look again
    return loop


async def complete_answered(state: HumanLoopState) -> None:
    """Loops whose last answer is in but whose completion was cut short (a crash, a lost race)."""
    for loop in await state.loops.find({"status": m.IN_PROGRESS,
                                        "complete_pending": True}).to_list(length=100):
        await complete(state, loop)


def imitated(config: dict[str, Any], content: dict[str, Any], mask: bytes | None,
             size: tuple[int | None, int | None]) -> dict[str, Any]:
    """An answer in the shape of the AWS worker task template the flow definition imitates
    (LoopConfig.AnswerFormat), from Loupe's own {"anomaly": {"label", ...}}."""
    label = content["anomaly"]["label"]
    name = config.get("Categories", {}).get(label, label)
    if config.get("AnswerFormat") == "crowd-image-classifier":
        return {"crowd-image-classifier": {"label": name}}
    # crowd-semantic-segmentation: the painted mask as labeledImage, its red as the anomaly's label.
    segmentation: dict[str, Any] = {"inputImageProperties": {"width": size[0], "height": size[1]},
                                    "labelMappings": {}}
    if mask is not None:
        segmentation["labelMappings"] = {name: {"color": "#ff0000"}}
        segmentation["labeledImage"] = {"pngImageData": base64.b64encode(mask).decode()}
    return {"crowd-semantic-segmentation": segmentation}


async def _output(state: HumanLoopState, loop: dict[str, Any],
                  flow: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    folder = loop["output_s3_uri"].rsplit("/", 1)[0]
    config = flow["spec"]["HumanLoopConfig"] if flow else {}
    answers, drawn = [], []
    for answer in loop["answers"]:
        content = json.loads(json.dumps(answer["answerContent"]))
        mask_key = content["anomaly"].pop("maskKey", None)
        data = None
        if mask_key:
            data = await state.blobs.get(mask_key)
            uri = f"{folder}/answers/{answer['workerId']}-mask.png"
            await _write(state, uri, data)
            content["anomaly"]["maskS3Uri"] = uri
            drawn.append((content["anomaly"]["label"], data))
        shaped = {"answerContent": content}
        if config.get("AnswerFormat", "loupe") != "loupe":
            shaped = {"answerContent": imitated(config, content, data, (loop["task"].get("width"),
                                                                         loop["task"].get("height"))),
                      "loupeAnswerContent": content}
        answers.append({**shaped, "acceptanceTime": iso(answer["acceptanceTime"]),
                        "submissionTime": iso(answer["submissionTime"]),
                        "timeSpentInSeconds": answer["timeSpentInSeconds"], "workerId": answer["workerId"],
                        "workerMetadata": {"identityData": {"identityProviderType": "Loupe",
                                                            "sub": answer["workerId"]}}})
    consolidated = consolidate([a.get("loupeAnswerContent", a["answerContent"])["anomaly"]["label"]
                                for a in answers])
    masks = [data for label, data in drawn if label == consolidated["label"] == "anomaly"]
    if masks:
        merged = await asyncio.to_thread(merge_masks, masks)
        key = f"human-loops/{loop['_id']}/consolidated-mask.png"
        await state.blobs.put(key, merged)
        consolidated["maskS3Uri"] = f"{folder}/consolidated-mask.png"
        consolidated["maskKey"] = key
        await _write(state, consolidated["maskS3Uri"], merged)
    public = {k: v for k, v in consolidated.items() if k != "maskKey"}
    output = {"flowDefinitionArn": loop["flow_arn"], "humanLoopName": loop["_id"],
              "inputContent": json.loads(loop["input_content"]), "humanAnswers": answers,
              "consolidatedAnswer": public}
    files = await _task_files(state, loop, folder)
    if files:
        output["taskFiles"] = files
    return consolidated, output


async def _task_files(state: HumanLoopState, loop: dict[str, Any], folder: str) -> dict[str, str]:
    """What reviewers saw (the image, the model's heatmap and mask), copied next to output.json."""
    names = {"image": "image", "heatmap": "heatmap.png", "mask": "model-mask.png"}
    files = {}
    for which, name in names.items():
        key = loop["task"].get(f"{which}_key")
        if key:
            uri = f"{folder}/task/{name}"
            await _write(state, uri, await state.blobs.get(key))
            files[which] = uri
    return files


# --- answers back into the dataset -------------------------------------------------------------


async def _store_upload(state: HumanLoopState, project: str, data: bytes, name: str) -> str:
    key = f"transfer/uploads/{uuid.uuid4().hex}"
    await state.blobs.put(key, data)
    cmd = dm.StoreUpload(request_id=str(uuid.uuid4()), project_name=project, upload_key=key, file_name=name)
    return (await state.rpc.request(DATASET_COMMANDS, cmd, key=project)).unwrap()["source_ref"]


async def add_to_dataset(state: HumanLoopState, loop: dict[str, Any]) -> dict[str, Any]:
    flow = await state.flows.find_one({"_id": loop["flow_name"]})
    if flow is None or not flow["spec"].get("DatasetFeedback"):
        return {"state": "skipped", "reason": "the flow definition no longer sends answers to a dataset"}
    project = ((loop.get("origin") or {}).get("project_name")
               or flow["spec"]["HumanLoopActivationConfig"]["ProjectName"])
    dataset_type = flow["spec"]["DatasetFeedback"]["DatasetType"]
    label = loop["consolidated"]["label"]
    source_ref = await _store_upload(state, project, await state.blobs.get(loop["task"]["image_key"]),
                                     f"{loop['_id']}-image")
    line: dict[str, Any] = {"source-ref": source_ref, "anomaly-label": int(label == "anomaly"),
                            "anomaly-label-metadata": {
                                "class-name": label, "human-annotated": "yes",
                                "confidence": loop["consolidated"]["agreement"],
                                "job-name": f"loupe-review/{flow['_id']}", "creation-date": iso(now()),
                                "type": "groundtruth/image-classification", "human-loop-name": loop["_id"]}}
    if loop["consolidated"].get("maskKey"):
        line["anomaly-mask-ref"] = await _store_upload(state, project, await state.blobs.get(
            loop["consolidated"]["maskKey"]), f"{loop['_id']}-mask")
    changes = (json.dumps(line, separators=(",", ":")) + "\n").encode()
    changes_key = f"transfer/changes/{uuid.uuid4().hex}.jsonl"
    await state.blobs.put(changes_key, changes)
    cmd = dm.UpdateDatasetEntries(request_id=str(uuid.uuid4()), project_name=project,
                                  dataset_type=dataset_type, changes_key=changes_key,
                                  changes_sha256=hashlib.sha256(changes).hexdigest())
    (await state.rpc.request(DATASET_COMMANDS, cmd, key=project)).unwrap()
    await _count_reviewed(state, project, flow)
    return {"state": "added", "project_name": project, "dataset_type": dataset_type, "source_ref": source_ref,
            "at": iso(now())}


async def _count_reviewed(state: HumanLoopState, project: str, flow: dict[str, Any]) -> None:
    await state.reviewed.update_one({"_id": project}, {
        "$inc": {"waiting": 1, "added_total": 1},
        "$set": {"retrain_after": flow["spec"]["DatasetFeedback"].get("RetrainAfter")}}, upsert=True)


async def retrain_when_due(state: HumanLoopState) -> None:
    """CreateModel for projects with RetrainAfter reviewed images waiting. A refusal (typically the
    dataset still applying the last answers, or too few images) is retried a few seconds later."""
    due = await state.reviewed.find({"retrain_after": {"$ne": None}, "training_requested": {"$ne": True},
                                     "next_try_at": {"$not": {"$gt": now()}}}).to_list(length=100)
    for counts in due:
        if counts["waiting"] < counts["retrain_after"]:
            continue
        project = counts["_id"]
        # Marked before asking: the model-created event that clears it may arrive before the reply.
        await state.reviewed.update_one({"_id": project}, {"$set": {"training_requested": True}})
        cmd = tm.CreateModel(request_id=str(uuid.uuid4()), project_name=project,
                             description="Retrained-after-human-review",
                             output_config=tm.OutputConfig(s3_location=tm.S3Location(
                                 bucket=state.settings.human_loop_bucket, prefix=f"models/{project}/")))
        try:
            (await state.rpc.request(TRAINING_COMMANDS, cmd, key=project)).unwrap()
        except Exception as exc:  # noqa: BLE001 - refused (LoupeError) or unreachable: try again later
            reason = exc.error.message if isinstance(exc, LoupeError) else repr(exc)
            log.info("retraining %s after %d reviewed images refused for now: %s", project, counts["waiting"],
                     reason)
            await state.reviewed.update_one({"_id": project}, {"$set": {
                "training_requested": None, "next_try_at": now() + timedelta(seconds=RETRAIN_RETRY_SECONDS)}})


async def on_model_created(state: HumanLoopState, project: str) -> None:
    """A training run started: the reviewed images waiting so far are in it."""
    await state.reviewed.update_one({"_id": project}, {"$set": {"waiting": 0, "training_requested": None}})


async def retry_feedback(state: HumanLoopState) -> None:
    """Add completed loops to their dataset. A loop is claimed first (state `adding`, keyed by its
    id, not its rev), so a concurrent change to the loop cannot make it be added twice."""
    stale = now() - timedelta(seconds=FEEDBACK_STALE_SECONDS)
    waiting = {"status": m.COMPLETED,
               "$or": [{"feedback.state": "pending"},
                       {"feedback.state": "adding", "feedback.started_at": {"$lt": stale}}]}
    for loop in await state.loops.find(waiting).to_list(length=50):
        attempts = loop["feedback"].get("attempts", 0) + 1
        claimed = await state.loops.find_one_and_update(
            {"_id": loop["_id"], "feedback.state": loop["feedback"]["state"]},
            {"$set": {"feedback": {"state": "adding", "attempts": attempts, "started_at": now()}}},
            return_document=True)
        if claimed is None:
            continue
        try:
            feedback = await add_to_dataset(state, claimed)
        except LoupeError as err:
            feedback = {"state": "failed", "reason": err.error.message, "attempts": attempts}
        except Exception as exc:  # noqa: BLE001 - e.g. no reply in time: try again on the next sweep
            log.warning("adding %s to its dataset failed (%s); attempt %d", loop["_id"], exc, attempts)
            feedback = {"state": "pending" if attempts < FEEDBACK_ATTEMPTS else "failed",
                        "reason": str(exc)[:500], "attempts": attempts}
        await state.loops.update_one({"_id": loop["_id"]}, {"$set": {"feedback": feedback}})


async def reviewed_images(state: HumanLoopState, project: str) -> dict[str, Any]:
    counts = await state.reviewed.find_one({"_id": project}) or {}
    return {"project_name": project, "waiting_for_training": counts.get("waiting", 0),
            "added_total": counts.get("added_total", 0),
            "training_requested": bool(counts.get("training_requested"))}
