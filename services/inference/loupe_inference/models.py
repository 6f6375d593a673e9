"""The worker's loaded models: fetched from blob storage once, warmed up with one inference (so
"ready" means the model answers), shared by the DetectAnomalies units and the ingest path."""

from __future__ import annotations

import asyncio
import json
import logging

from PIL import Image

from loupe_common.blobs import BlobStore
from loupe_common.hosting_messages import HostedModel, ModelLoad

from .runtime import ModelRuntime

log = logging.getLogger("loupe.inference.models")


class ModelLoadError(Exception):
    pass


class ModelCache:
    def __init__(self, blobs: BlobStore, threads: int) -> None:
        self._blobs = blobs
        self._threads = threads
        self._loaded: dict[str, ModelRuntime] = {}
        self._loading: dict[str, asyncio.Task[ModelRuntime]] = {}
        self.states: dict[str, ModelLoad] = {}

    async def get(self, key: str, hosted: HostedModel) -> ModelRuntime:
        if key in self._loaded:
            return self._loaded[key]
        task = self._loading.get(key)
        if task is None:
            self.states[key] = ModelLoad(state="loading")
            task = self._loading[key] = asyncio.create_task(self._load(key, hosted))
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self._loading.pop(key, None)

    async def _load(self, key: str, hosted: HostedModel) -> ModelRuntime:
        try:
            model_bytes = await self._blobs.get(hosted.artifacts["model.onnx"])
            sidecar = json.loads(await self._blobs.get(hosted.artifacts["model.json"]))
            runtime = await asyncio.to_thread(ModelRuntime, model_bytes, sidecar, self._threads)
            blank = Image.new("RGB", (runtime.size, runtime.size), (128, 128, 128))
            await asyncio.to_thread(runtime.detect, blank, with_mask=False)
        except Exception as exc:  # noqa: BLE001 - any failure is reported to hosting as the reason
            reason = f"cannot load model version {hosted.model_version} of {hosted.project_name}: " \
                     f"{exc.__class__.__name__}: {str(exc)[:300]}"
            log.error(reason)
            self.states[key] = ModelLoad(state="failed", error=reason)
            raise ModelLoadError(reason) from None
        self._loaded[key] = runtime
        self.states[key] = ModelLoad(state="ready")
        log.info("loaded %s", key)
        return runtime

    def drop(self, key: str) -> None:
        self._loaded.pop(key, None)
        self.states.pop(key, None)
        task = self._loading.pop(key, None)
        if task is not None:
            task.cancel()

    def keys(self) -> list[str]:
        return list(self.states)
