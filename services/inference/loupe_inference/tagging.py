"""Image tagging in the inference workers: every worker is a member of group loupe-tagging on
loupe.tagging.requests and answers with the Image Recognition v1.0 or v2 result shape (or the
reference's error code). The models load once per worker, in the background at start-up."""

from __future__ import annotations

import asyncio
import io
import logging
import warnings
from typing import Any

from aiokafka import AIOKafkaProducer
from PIL import Image

from loupe_common.blobs import BlobNotFound, BlobStore
from loupe_common.hosting_messages import H_REQUEST_ID
from loupe_common.image_tagging import (
    ERRORS,
    FORMATS,
    H_LANGUAGE,
    H_LIMIT,
    H_THRESHOLD,
    H_VERSION,
    MAX_WIDE_SIDE,
    TaggingParams,
)
from loupe_common.images import as_seen
from loupe_common.messages import Reply
from loupe_common.settings import Settings
from loupe_common.topics import TAGGING_REQUESTS

from .units import RequestUnit, header_text

log = logging.getLogger("loupe.inference.tagging")
GROUP = "loupe-tagging"


def _error(code: str, message: str | None = None) -> Reply:
    return Reply.success({"error_code": code, "error_msg": message or ERRORS[code]})


def params_of(headers: dict[str, bytes]) -> TaggingParams:
    return TaggingParams(version=header_text(headers, H_VERSION) or "v1",  # type: ignore[arg-type]
                         language=header_text(headers, H_LANGUAGE) or "zh",
                         limit=int(header_text(headers, H_LIMIT) or 30),
                         threshold=float(header_text(headers, H_THRESHOLD) or 0))


def _v2_name(name: str) -> str:
    return name[:1].upper() + name[1:]


def shape(tags: list[Any], params: TaggingParams) -> dict:
    """The reference's result: tags at or above the threshold, most confident first, each name
    once, at most `limit`; v1 with float confidences and object/scene/concept types, v2 with string
    confidences, a category type and object instances."""
    zh = params.language == "zh"
    kept, shown = [], set()
    for t in sorted((t for t in tags if t.confidence >= params.threshold), key=lambda t: -t.confidence):
        name = t.zh if zh else t.en
        if name in shown:  # several classes can share a Chinese name (breeds -> 犬): show it once
            continue
        shown.add(name)
        kept.append(t)
        if len(kept) == params.limit:
            break
    out = []
    for t in kept:
        if params.version == "v1":
            out.append({"confidence": round(t.confidence, 2), "tag": t.zh if zh else t.en, "type": t.type_v1,
                        "i18n_tag": {"zh": t.zh, "en": t.en}})
            continue
        en = _v2_name(t.en)
        out.append({
            "confidence": f"{t.confidence:.2f}", "tag": t.zh if zh else en,
            "type": t.category_zh if zh else t.category_en,
            "i18n_tag": {"zh": t.zh, "en": en}, "i18n_type": {"zh": t.category_zh, "en": t.category_en},
            "instances": [{"bounding_box": {"width": i.width, "height": i.height, "top_left_x": i.top_left_x,
                                            "top_left_y": i.top_left_y}, "confidence": f"{i.confidence:.2f}"}
                          for i in t.instances],
        })
    return {"result": {"tags": out}}


def open_image(data: bytes) -> Image.Image:
    """Fully decoded, with limits (the gateway checked the header; this catches damaged data)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = Image.open(io.BytesIO(data))
        if image.format not in FORMATS:
            raise ValueError("format")
        if max(image.size) > MAX_WIDE_SIDE:
            raise ValueError("size")
        image.load()
    return as_seen(image).convert("RGB")  # upright, 16-bit scaled (a person's view), then RGB


class TaggingUnit(RequestUnit):
    def __init__(self, settings: Settings, producer: AIOKafkaProducer, blobs: BlobStore,
                 threads: int) -> None:
        super().__init__(settings, TAGGING_REQUESTS, GROUP, producer, blobs)
        self._threads = threads
        self.tagger: Any = None
        self.load_error: str | None = None

    async def start(self) -> None:
        from loupe_models.catalogue import model_dir

        from .tagger import Tagger

        try:
            self.tagger = await asyncio.to_thread(Tagger.load, model_dir(), self._threads)
        except Exception as exc:  # noqa: BLE001 - answer every request with the reason instead
            self.load_error = f"The tagging models could not be loaded: {exc}"
            log.error("%s", self.load_error)
        await super().start()

    async def handle(self, value: bytes, headers: dict[str, bytes], blob: str | None) -> Reply:
        if self.tagger is None:
            return _error("AIS.0505", self.load_error or "The tagging models are still loading; try again")
        try:
            data = await self._blobs.get(blob) if blob else value
            params = params_of(headers)
            try:
                image = await asyncio.to_thread(open_image, data)
            except Exception:  # noqa: BLE001 - truncated or corrupt image data
                return _error("AIS.0503")
            tags = await asyncio.to_thread(self.tagger.tag, image)
            return Reply.success(shape(tags, params))
        except BlobNotFound:
            return _error("AIS.0506", "The image was lost in transit; send it again")
        except Exception:  # noqa: BLE001 - every request gets an answer
            log.exception("tagging %s failed", header_text(headers, H_REQUEST_ID))
            return _error("AIS.0505")
