"""A hosted model version in an inference worker: the exported ONNX graph and its sidecar, turned
into a Lookout DetectAnomalyResult. Every model answers IsAnomalous and Confidence; a segmentation
model (trained with anomaly masks) also answers Anomalies (the background first, then each anomaly
class found, by its name and colour in the training dataset's colour map) and AnomalyMask (a PNG of
the image's own size, painted in those colours). A classification model returns no Anomalies and
no AnomalyMask, as in Lookout; Loupe's native route can still ask for its mask.

The threshold is a parameter of every call (the sidecar's by default), never baked into the graph.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from loupe_edge import rules
from loupe_models import anomaly_model
from loupe_models.anomaly_model import BACKGROUND_CLASS, GENERIC_CLASS, AnomalyClassSpec, Sidecar
from loupe_models.preprocess import to_pixels


# A flagged image's mask and classes are worked out on at most this many pixels (work_size).
WORK_PIXELS = 2048 * 2048


@dataclass(frozen=True)
class Detection:
    score: float
    threshold: float
    is_anomalous: bool
    confidence: float
    anomalous_fraction: float
    mask_png: bytes | None
    anomaly_map: np.ndarray | None = None  # the map on the image's region (kept for human review)
    pixel_threshold: float = 0.0
    kind: str = "segmentation"
    found: list[tuple[AnomalyClassSpec, float]] = field(default_factory=list)  # (class, share of the image)

    def lookout_result(self) -> dict:
        """DetectAnomalyResult as the later Lookout API returns it (Anomalies[0] is the background)."""
        result: dict = {"Source": {"Type": "direct"}, "IsAnomalous": self.is_anomalous,
                        "Confidence": round(self.confidence, 6)}
        if self.kind == "classification":
            return result
        anomalies = [{"Name": BACKGROUND_CLASS.name, "PixelAnomaly": {
            "TotalPercentageArea": round(1.0 - self.anomalous_fraction, 6), "Color": BACKGROUND_CLASS.color}}]
        anomalies += [{"Name": spec.name,
                       "PixelAnomaly": {"TotalPercentageArea": round(share, 6), "Color": spec.color}}
                      for spec, share in self.found]
        result["Anomalies"] = anomalies
        if self.mask_png is not None:
            result["AnomalyMask"] = base64.b64encode(self.mask_png).decode()
        return result


class ModelRuntime:
    def __init__(self, model: Path | bytes, sidecar: dict, threads: int = 1) -> None:
        if sidecar.get("format") != anomaly_model.FORMAT:
            raise ValueError(f"unsupported model format {sidecar.get('format')!r}")
        self.sidecar = Sidecar.model_validate(sidecar)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle pool threads would spin after each run, taking cores from the gateway and the broker
        # on the same machine; measured in tests/benchmarks/bench_inference.py.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        source = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self.size = self.sidecar.input.size
        self.threshold = self.sidecar.threshold
        self.pixel_threshold = self.sidecar.pixel_threshold
        self.temperature = self.sidecar.calibration.temperature
        self.kind = self.sidecar.kind
        # A classification model's mask (native route, human review) is painted in the generic colour.
        self.classes = self.sidecar.classes if self.kind == "segmentation" else [GENERIC_CLASS]
        self.outputs = [o.name for o in self.session.get_outputs()
                        if o.name in ("anomaly_map", "class_scores")]

    @classmethod
    def load(cls, directory: Path, threads: int = 1) -> ModelRuntime:
        return cls(directory / "model.onnx", json.loads((directory / "model.json").read_text()), threads)

    def confidence(self, score: float, threshold: float) -> float:
        return float(anomaly_model.confidence(score, threshold, self.temperature))

    def detect(self, image: Image.Image, *, threshold: float | None = None,
               with_mask: bool = True, size: tuple[int, int] | None = None) -> Detection:
        """Score one decoded image. A custom threshold moves the image and pixel thresholds together.
        `size`: the image's full size when it was decoded reduced (the mask is of that size)."""
        size = size or image.size
        t = self.threshold if threshold is None else float(threshold)
        pixel_t = self.pixel_threshold + (t - self.threshold)
        pixels, place = to_pixels(image, self.size)
        outputs = dict(zip(self.outputs, self.session.run(self.outputs, {"pixels": pixels[None]}),
                           strict=True))
        canvas_map = outputs["anomaly_map"][0, 0]
        score = anomaly_model.image_score(canvas_map, place, self.sidecar.scoring)
        region = place.crop(canvas_map)
        is_anomalous = score >= t
        mask_png = None
        fraction = 0.0
        found: list[tuple[AnomalyClassSpec, float]] = []
        if is_anomalous:
            work = work_size(size)
            heat = anomaly_model.map_on_image(region, work)
            full = anomaly_model.anomaly_mask(region, pixel_t, work, heat)
            fraction = float(full.mean())
            scores = None
            if "class_scores" in outputs and self.kind == "segmentation":
                scores = anomaly_model.class_scores_on_image(outputs["class_scores"],
                                                             tuple(self.sidecar.stats["grid"]),
                                                             place, self.size, work)
            classes = anomaly_model.classify_regions(full, scores, heat)
            shares = np.bincount(classes[full], minlength=len(self.classes)) / full.size
            found = [(spec, float(share)) for spec, share in zip(self.classes, shares, strict=True)
                     if share > 0]
            if with_mask:
                mask_png = _mask_png(classes, tuple(c.color for c in self.classes), size)
        elif with_mask:
            mask_png = _background_png(*size)
        return Detection(score, t, is_anomalous, self.confidence(score, t), fraction, mask_png, region,
                         pixel_t, self.kind, found)


def work_size(size: tuple[int, int]) -> tuple[int, int]:
    """The size (width, height) a flagged image's mask and classes are worked out at: its own, or
    scaled down to WORK_PIXELS. The model sees a few hundred pixels a side whatever the image, so a
    finer mask would only repeat the map's interpolation, at up to 4x the cost (issue 19)."""
    width, height = size
    if width * height <= WORK_PIXELS:
        return size
    scale = math.sqrt(WORK_PIXELS / (width * height))
    return max(1, int(width * scale)), max(1, int(height * scale))


def _mask_png(classes: np.ndarray, colors: tuple[str, ...], size: tuple[int, int]) -> bytes:
    """An RGB PNG of the image's `size`: the background colour, and each anomaly class's colour on
    its pixels (rules.mask_colours), scaled up from the working size by nearest neighbour. Level 1: a
    mask is a few flat regions, which even the fastest level packs tightly."""
    # As a palette image until the last step: scaling one byte a pixel, then Pillow's own conversion.
    mask = Image.fromarray((classes + 1).astype(np.uint8), "P")
    mask.putpalette(rules.mask_colours(colors).tobytes())
    if mask.size != size:
        mask = mask.resize(size, Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    mask.convert("RGB").save(buffer, format="PNG", optimize=False, compress_level=1)
    return buffer.getvalue()


@functools.lru_cache(maxsize=64)
def _background_png(width: int, height: int) -> bytes:
    """The mask of a normal image: all background. Most images are normal and share a few sizes, so
    it is encoded once per size (12.6 ms for 1024 x 1024 on this machine)."""
    return _mask_png(np.full((1, 1), -1, np.int32), (), (width, height))


# Blue -> cyan -> yellow -> red, the usual anomaly heatmap ramp.
_RAMP = np.array([[0, 0, 255], [0, 255, 255], [255, 255, 0], [255, 0, 0]], np.float32)


def heatmap_png(anomaly_map: np.ndarray, pixel_threshold: float, size: tuple[int, int]) -> bytes:
    """An RGBA PNG of the image's size to lay over it. The scale runs from the image's median patch
    score to the pixel threshold (or the image's hottest patch, if hotter), so a borderline image
    still shows where the model looked while a clearly normal one stays nearly transparent."""
    scores = anomaly_map.astype(np.float32)
    low = float(np.median(scores))
    high = max(float(scores.max()), float(pixel_threshold), low + 1e-6)
    level = np.clip((scores - low) / (high - low), 0.0, 1.0)
    position = level * (len(_RAMP) - 1)
    step = np.minimum(position.astype(int), len(_RAMP) - 2)
    frac = (position - step)[..., None]
    rgb = _RAMP[step] * (1 - frac) + _RAMP[step + 1] * frac
    alpha = 230 * np.clip((level - 0.1) / 0.9, 0.0, 1.0) ** 0.7  # the coolest tenth stays clear
    rgba = np.dstack([rgb, alpha]).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").resize(size, Image.Resampling.BILINEAR).save(buffer, format="PNG",
                                                                              compress_level=6)
    return buffer.getvalue()
