"""Starting human review from a detection: the worker follows the human-loop service's activation
table, tests each result against the conditions of the flow definitions that cover its model,
and for the first that holds stores the image, heatmap and mask and sends StartHumanLoop. The
loop name comes from the request id, so a redelivered request names the same loop (the service
then returns the existing one) and the caller gets the name in its result at once."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

from aiokafka import AIOKafkaProducer

from loupe_common import human_loop_messages as hm
from loupe_common.blobs import BlobStore
from loupe_common.images import ImageInfo
from loupe_common.settings import Settings
from loupe_common.topics import HUMAN_LOOP_COMMANDS

from .runtime import Detection, heatmap_png

log = logging.getLogger("loupe.inference.review")


class ReviewStarter:
    def __init__(self, settings: Settings, blobs: BlobStore, producer: AIOKafkaProducer) -> None:
        self._settings = settings
        self._blobs = blobs
        self._producer = producer
        self.table: hm.ActivationTable | None = None

    def on_table(self, table: hm.ActivationTable) -> None:
        if self.table is None or table.sent_at >= self.table.sent_at:
            self.table = table

    def covers(self, project_name: str, model_version: str) -> bool:
        """Some flow definition reviews this model's results (then detections keep their mask)."""
        return bool(self.table and self.table.for_model(project_name, model_version))

    async def maybe_start(self, **detected: Any) -> dict | None:
        """The HumanLoopActivationOutput to add to the result, or None when no loop starts. Review
        is an extra: when it fails, the detection is still answered (without a loop)."""
        try:
            return await self._start(**detected)
        except Exception:  # noqa: BLE001 - e.g. blob storage or the broker unreachable
            log.exception("starting human review for %s failed; answering without it",
                          detected.get("request_id"))
            return None

    async def _start(self, *, project_name: str, model_version: str, request_id: str, source: str,
                     image_id: str | None, data: bytes, result: dict, detection: Detection,
                     info: ImageInfo) -> dict | None:
        if self.table is None:
            return None
        lookout = result["DetectAnomalyResult"]
        prediction = hm.Prediction(is_anomalous=lookout["IsAnomalous"], confidence=lookout["Confidence"],
                                   request_id=request_id)
        for rule in self.table.for_model(project_name, model_version):
            reasons = hm.activation_reasons(rule.conditions, prediction)
            if reasons:
                break
        else:
            return None
        name = hm.activated_loop_name(rule.flow_definition_name, request_id)
        origin = await self._store_files(name, data, detection, info, lookout)
        content = {
            "source": source, "projectName": project_name, "modelVersion": model_version,
            "requestId": request_id, "imageId": image_id, "contentType": info.content_type,
            "width": info.width, "height": info.height,
            "prediction": {"IsAnomalous": lookout["IsAnomalous"], "Confidence": lookout["Confidence"],
                           "Score": result["Score"], "Threshold": result["Threshold"],
                           "TotalPercentageArea": round(detection.anomalous_fraction, 6)},
            "activationReasons": reasons,
        }
        command = hm.StartHumanLoop(
            request_id=request_id, human_loop_name=name, flow_definition_arn=rule.flow_definition_arn,
            input_content=json.dumps(content, sort_keys=True), content_classifiers=[],
            origin=hm.LoopOrigin(project_name=project_name, model_version=model_version,
                                 request_id=request_id, content_type=info.content_type, width=info.width,
                                 height=info.height, **origin))
        await self._producer.send_and_wait(HUMAN_LOOP_COMMANDS, command.model_dump_json().encode(),
                                           key=name.encode(), headers=[("content-type", b"application/json")])
        return {"HumanLoopName": name,
                "HumanLoopArn": hm.loop_arn(self._settings.region, self._settings.account_id, name),
                "FlowDefinitionArn": rule.flow_definition_arn, "HumanLoopActivationReasons": reasons}

    async def _store_files(self, name: str, data: bytes, detection: Detection, info: ImageInfo,
                           lookout: dict) -> dict[str, str | None]:
        image_key = f"human-loops/{name}/image"
        keys: dict[str, str | None] = {"image_key": image_key, "heatmap_key": None, "mask_key": None}
        await self._blobs.put(image_key, data)
        if detection.anomaly_map is not None:
            heatmap = await asyncio.to_thread(heatmap_png, detection.anomaly_map, detection.pixel_threshold,
                                              (info.width, info.height))
            heatmap_key = f"human-loops/{name}/heatmap.png"
            keys["heatmap_key"] = heatmap_key
            await self._blobs.put(heatmap_key, heatmap)
        mask = detection.mask_png or (base64.b64decode(lookout["AnomalyMask"]) if "AnomalyMask" in lookout
                                      else None)
        if mask is not None and lookout["IsAnomalous"]:
            mask_key = f"human-loops/{name}/model-mask.png"
            keys["mask_key"] = mask_key
            await self._blobs.put(mask_key, mask)
        return keys

