"""One training run, CPU-bound, executed in a worker thread: load images lazily (bounded memory),
fit the detector on normal training images, calibrate the threshold without looking at the test
images, evaluate on the test images, and export the ONNX model with its evaluation artifacts."""

from __future__ import annotations

import heapq
import io
import json
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from loupe_models.catalogue import model_path
from loupe_models.preprocess import decode_pixels

from . import report
from .patchcore import metrics
from .patchcore.detector import Detector, DetectorConfig
from .patchcore.export import export
from .patchcore.features import FeatureExtractor

FetchBlob = Callable[[str], bytes]
Progress = Callable[[str, float], None]
PIXEL_GRID = 64  # anomaly maps and masks are compared on a 64x64 grid for pixel AUROC
WORST_CASES = 4


class TrainingError(Exception):
    """A failure the user can act on (bad image, too few usable images, ...)."""


@dataclass
class TrainingOutput:
    model_onnx: bytes
    sidecar: dict
    evaluation_manifest: str
    evaluation_result: dict
    report_html: str
    performance: dict[str, float]
    timings: dict[str, float] = field(default_factory=dict)


def _load(fetch: FetchBlob, entry: dict, size: int) -> np.ndarray:
    try:
        pixels, _ = decode_pixels(fetch(entry["blob_key"]), size)
    except Exception as exc:  # noqa: BLE001 - any decode failure is the image's fault
        raise TrainingError(f"Image {entry['source_ref']} could not be read: {exc}") from None
    return pixels


def _batches(fetch: FetchBlob, entries: list[dict], size: int, batch: int) -> Iterator[np.ndarray]:
    for start in range(0, len(entries), batch):
        yield np.stack([_load(fetch, e, size) for e in entries[start : start + batch]])


def _mask_grid(fetch: FetchBlob, entry: dict, size: int) -> np.ndarray | None:
    if not entry.get("mask_key"):
        return None
    with Image.open(io.BytesIO(fetch(entry["mask_key"]))) as mask:
        grey = np.asarray(mask.convert("L").resize((PIXEL_GRID, PIXEL_GRID), Image.Resampling.BOX), np.float32)
    return grey > 127


def _grid(anomaly_map: np.ndarray) -> np.ndarray:
    s = anomaly_map.shape[0]
    f = s // PIXEL_GRID
    return anomaly_map[: f * PIXEL_GRID, : f * PIXEL_GRID].reshape(PIXEL_GRID, f, PIXEL_GRID, f).mean(axis=(1, 3))


def train(*, config: DetectorConfig, train_entries: list[dict], test_entries: list[dict], fetch: FetchBlob,
          progress: Progress, title: str, threads: int = 2) -> TrainingOutput:
    started = time.perf_counter()
    normals = [e for e in train_entries if e["label"] == 0]
    train_anomalies = [e for e in train_entries if e["label"] == 1]
    extractor = FeatureExtractor(str(model_path(config.backbone)), config.taps, config.image_size, threads)
    detector = Detector(config, extractor)
    progress(f"Extracting features of {len(normals)} normal training images", 0.02)
    detector.fit(_batches(fetch, normals, config.image_size, config.batch_size), len(normals), progress)
    fitted = time.perf_counter()

    # The threshold is set without the test images: leave-one-out scores of the training normals,
    # plus the training set's anomalous images when there are a few.
    anomaly_scores = None
    if len(train_anomalies) >= 3:
        anomaly_scores = np.concatenate([detector.score(b)[0] for b in _batches(fetch, train_anomalies, config.image_size, config.batch_size)])
    calibration = detector.calibrate(detector.loo_scores, anomaly_scores)

    progress(f"Evaluating on {len(test_entries)} test images", 0.85)
    scores, labels, pixel_scores, pixel_labels, lines = [], [], [], [], []
    worst_fp: list = []  # min-heaps keyed so the worst cases survive
    worst_fn: list = []
    vmin, vmax = np.inf, -np.inf
    for start in range(0, len(test_entries), config.batch_size):
        chunk = test_entries[start : start + config.batch_size]
        pixels = np.stack([_load(fetch, e, config.image_size) for e in chunk])
        batch_scores, maps = detector.score(pixels)
        for entry, px, score, amap in zip(chunk, pixels, batch_scores, maps, strict=True):
            score = float(score)
            scores.append(score)
            labels.append(entry["label"])
            vmin, vmax = min(vmin, float(amap.min())), max(vmax, float(np.quantile(amap, 0.999)))
            mask = _mask_grid(fetch, entry, config.image_size)
            if mask is None and entry["label"] == 0:
                mask = np.zeros((PIXEL_GRID, PIXEL_GRID), bool)
            if mask is not None:
                pixel_scores.append(_grid(amap).ravel())
                pixel_labels.append(mask.ravel())
            predicted = score >= calibration.threshold
            lines.append(json.dumps({
                "source-ref": entry["source_ref"], "anomaly-label": entry["label"],
                "prediction": int(predicted), "score": round(score, 6),
                "confidence": round(float(calibration.confidence(np.array([score]))[0]), 6),
            }))
            case = report.Case(entry["source_ref"], entry["label"], score, px, amap)
            if entry["label"] == 0:
                heapq.heappush(worst_fp, (score, start, len(worst_fp), case))
                if len(worst_fp) > WORST_CASES:
                    heapq.heappop(worst_fp)
            else:
                heapq.heappush(worst_fn, (-score, start, len(worst_fn), case))
                if len(worst_fn) > WORST_CASES:
                    heapq.heappop(worst_fn)
    evaluated = time.perf_counter()

    scores_a, labels_a = np.array(scores), np.array(labels)
    at_threshold = metrics.classification(scores_a, labels_a, calibration.threshold)
    image_auroc = metrics.auroc(scores_a, labels_a)
    pixel_auroc = (metrics.auroc(np.concatenate(pixel_scores), np.concatenate(pixel_labels))
                   if pixel_scores else None)
    curve = metrics.pr_curve(scores_a, labels_a) if labels_a.any() else []

    progress("Exporting the model", 0.95)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path, sidecar_path = export(detector, Path(tmp))
        model_onnx = onnx_path.read_bytes()
        sidecar = json.loads(sidecar_path.read_text())
    finished = time.perf_counter()
    timings = {
        "fit_seconds": round(fitted - started, 3),
        "evaluation_seconds": round(evaluated - fitted, 3),
        "total_seconds": round(finished - started, 3),
        "training_images_per_second": round(len(normals) / max(fitted - started, 1e-9), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    result = {
        "ImageAUROC": image_auroc, "PixelAUROC": pixel_auroc,
        "F1Score": at_threshold["f1"], "Precision": at_threshold["precision"], "Recall": at_threshold["recall"],
        "Threshold": calibration.threshold, "ThresholdMethod": calibration.method,
        "ConfusionMatrix": {k: at_threshold[k] for k in ("tp", "fp", "fn", "tn")},
        "TestImages": {"normal": int((labels_a == 0).sum()), "anomaly": int((labels_a == 1).sum())},
        "TrainingImages": {"normal": len(normals), "anomaly": len(train_anomalies)},
        "Detector": detector.config_dict(), "Stats": detector.stats, "Timings": timings,
    }
    shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()
             if k in ("ImageAUROC", "PixelAUROC", "F1Score", "Precision", "Recall", "Threshold", "ThresholdMethod")}
    html_report = report.render(
        title=title, metrics={**shown, **result["TestImages"]},
        normal_scores=scores_a[labels_a == 0], anomaly_scores=scores_a[labels_a == 1],
        threshold=calibration.threshold, curve=curve,
        false_positives=[c for *_, c in sorted(worst_fp, key=lambda t: -t[0]) if c.score >= calibration.threshold],
        false_negatives=[c for *_, c in sorted(worst_fn, key=lambda t: -t[0]) if c.score < calibration.threshold],
        vmin=float(vmin), vmax=float(vmax),
    )
    performance = {"F1Score": at_threshold["f1"], "Precision": at_threshold["precision"], "Recall": at_threshold["recall"]}
    return TrainingOutput(model_onnx, sidecar, "\n".join(lines) + "\n", result, html_report, performance, timings)
