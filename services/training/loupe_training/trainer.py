"""One training run, CPU-bound, executed in a worker thread: load images lazily (bounded memory),
fit the detector on normal training images, score the test images, set the threshold, and export
the ONNX model with its evaluation artifacts.

The threshold uses every labelled anomaly there is (as Lookout projects do, the test dataset's),
with the normal leave-one-out training scores. When it is fitted on the test images, the reported
F1, precision and recall come from stratified cross-validation over them (each image judged by a
threshold fitted without it), so DescribeModel's Performance predicts what users will see rather
than flattering the threshold on its own data."""

from __future__ import annotations

import heapq
import json
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from loupe_models import anomaly_model
from loupe_models.anomaly_model import Scoring
from loupe_models.catalogue import model_path
from loupe_models.preprocess import Placement, decode_pixels

from . import report, segmentation
from .patchcore import metrics
from .patchcore.detector import Detector, DetectorConfig
from .patchcore.export import export
from .patchcore.features import FeatureExtractor

FetchBlob = Callable[[str], bytes]
Progress = Callable[[str, float], None]
PIXEL_GRID = 64  # anomaly maps and masks are compared on a 64x64 grid for pixel AUROC
WORST_CASES = 4
MIN_TRAIN_ANOMALIES = 3  # anomalous training images that set the threshold on their own


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


def _load(fetch: FetchBlob, entry: dict, size: int) -> tuple[np.ndarray, Placement]:
    try:
        return decode_pixels(fetch(entry["blob_key"]), size)
    except Exception as exc:  # noqa: BLE001 - any decode failure is the image's fault
        raise TrainingError(f"Image {entry['source_ref']} could not be read: {exc}") from None


def _batch(fetch: FetchBlob, entries: list[dict], size: int) -> tuple[np.ndarray, list[Placement]]:
    loaded = [_load(fetch, e, size) for e in entries]
    return np.stack([pixels for pixels, _ in loaded]), [place for _, place in loaded]


def _batches(fetch: FetchBlob, entries: list[dict], size: int,
             batch: int) -> Iterator[tuple[np.ndarray, list[Placement]]]:
    for start in range(0, len(entries), batch):
        yield _batch(fetch, entries[start : start + batch], size)


def _grid(image: np.ndarray) -> np.ndarray:
    """A map region or mask on the PIXEL_GRID x PIXEL_GRID grid pixel AUROC is measured on."""
    return np.asarray(Image.fromarray(image.astype(np.float32), "F").resize(
        (PIXEL_GRID, PIXEL_GRID), Image.Resampling.BOX))


def _iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    union = (predicted | truth).sum()
    return float((predicted & truth).sum() / union) if union else 1.0


def train(*, config: DetectorConfig, train_entries: list[dict], test_entries: list[dict], fetch: FetchBlob,
          progress: Progress, title: str, threads: int = 2) -> TrainingOutput:
    started = time.perf_counter()
    normals = [e for e in train_entries if e["label"] == 0]
    train_anomalies = [e for e in train_entries if e["label"] == 1]
    classes = segmentation.model_classes(train_entries, test_entries)
    if classes and len(classes) > segmentation.MAX_CLASSES:
        raise TrainingError(f"The datasets' masks name {len(classes)} anomaly classes; a model learns at "
                            f"most {segmentation.MAX_CLASSES}")
    extractor = FeatureExtractor(str(model_path(config.backbone)), config.taps, config.image_size, threads)
    detector = Detector(config, extractor)
    progress(f"Extracting features of {len(normals)} normal training images", 0.02)
    detector.fit(_batches(fetch, normals, config.image_size, config.batch_size), len(normals), progress)
    exemplars = None
    if classes and len(classes) >= 2:
        masked = [e for e in train_anomalies if e.get("mask_key")]
        from_test = not masked
        masked = masked or [e for e in test_entries if e["label"] == 1 and e.get("mask_key")]
        progress(f"Learning {len(classes)} anomaly classes from {len(masked)} masks", 0.78)
        exemplars = segmentation.learn(detector, fetch, masked, classes, from_test)
    all_exemplars = None if exemplars is None else exemplars.exemplars()  # what the graph gets
    fitted = time.perf_counter()
    progress(f"Evaluating on {len(test_entries)} test images", 0.8)
    rules = _scoring_rules(config)
    scores: dict[Scoring, list[float]] = {rule: [] for rule in rules}
    labels: list[int] = []
    pixel_scores: list[np.ndarray] = []
    pixel_labels: list[np.ndarray] = []
    segmented: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # defective image -> (map region, true mask)
    # defective image -> (true classes, class scores, place)
    classed: dict[int, tuple[np.ndarray, np.ndarray | None, Placement]] = {}
    # min-heaps: normal, defective
    worst: dict[Scoring, tuple[list, list]] = {rule: ([], []) for rule in rules}
    vmin, vmax = np.inf, -np.inf
    for start in range(0, len(test_entries), config.batch_size):
        chunk = test_entries[start : start + config.batch_size]
        pixels, places = _batch(fetch, chunk, config.image_size)
        _, maps = detector.score(pixels, places)
        by_rule = {rule: detector.image_scores(maps, places, rule) for rule in rules}
        for i, (entry, px, place, amap) in enumerate(zip(chunk, pixels, places, maps, strict=True)):
            region = place.crop(amap)
            vmin, vmax = min(vmin, float(region.min())), max(vmax, float(np.quantile(region, 0.999)))
            # Masks come only with anomalous images, so a model with masks has classes.
            truth_classes = (segmentation.class_mask(fetch, entry, classes)
                             if classes is not None and entry.get("mask_key") else None)
            truth = None if truth_classes is None else truth_classes >= 0
            if truth_classes is not None and truth is not None and truth.any() and entry["label"] == 1:
                segmented[len(labels)] = (region, truth)
                scores_k = None
                if exemplars is not None:
                    # all_exemplars is set whenever exemplars is.
                    reference = (exemplars.exemplars(entry["source_ref"])
                                 if exemplars.from_test or all_exemplars is None else all_exemplars)
                    scores_k = segmentation.patch_scores(detector.features(px[None])[0], reference)
                classed[len(labels)] = (truth_classes, scores_k, place)
            if truth is None and entry["label"] == 0:
                truth = np.zeros((PIXEL_GRID, PIXEL_GRID), bool)
            if truth is not None:
                pixel_scores.append(_grid(region).ravel())
                pixel_labels.append((_grid(truth) > 0.5).ravel())
            labels.append(entry["label"])
            for rule in rules:
                score = float(by_rule[rule][i])
                scores[rule].append(score)
                # the worst cases survive: the highest-scoring normal, the lowest-scoring defective
                heap = worst[rule][entry["label"]]
                heapq.heappush(heap, (score if entry["label"] == 0 else -score, len(labels),
                                      report.Case(entry["source_ref"], entry["label"], score, px, amap)))
                if len(heap) > WORST_CASES:
                    heapq.heappop(heap)
    evaluated = time.perf_counter()

    labels_a = np.array(labels)
    rule = _choose_scoring(config, {r: np.array(v) for r, v in scores.items()}, labels_a)
    detector.use_scoring(rule)
    worst_fp, worst_fn = worst[rule]
    scores_a = np.array(scores[rule])
    train_anomalous = train_anomaly_scores(detector, fetch, train_anomalies, config)
    calibration, predicted = _threshold(detector, train_anomalous, scores_a, labels_a)
    at_threshold = metrics.confusion(predicted, labels_a)
    image_auroc = metrics.auroc(scores_a, labels_a)
    pixel_auroc = (metrics.auroc(np.concatenate(pixel_scores), np.concatenate(pixel_labels))
                   if pixel_scores else None)
    curve = metrics.pr_curve(scores_a, labels_a) if labels_a.any() else []
    # Mask IoU on the defective images the model flags, with the mask rule inference applies.
    ious = [_iou(anomaly_model.anomaly_mask(region, detector.pixel_threshold, truth.shape[::-1]), truth)
            for i, (region, truth) in segmented.items() if predicted[i]]
    by_class = segmentation.ClassEvaluation(classes or [])
    for i, (truth_classes, scores_k, place) in classed.items():
        if predicted[i]:
            by_class.add(segmentation.predicted_classes(
                segmented[i][0], detector.pixel_threshold, scores_k, extractor.grid, place, config.image_size,
                truth_classes.shape[::-1]), truth_classes)
    lines = [json.dumps({
        "source-ref": entry["source_ref"], "anomaly-label": entry["label"], "prediction": int(flagged),
        "score": round(float(score), 6),
        "confidence": round(float(anomaly_model.confidence(score, calibration.threshold,
                                                           calibration.temperature)), 6),
    }) for entry, score, flagged in zip(test_entries, scores_a, predicted, strict=True)]

    progress("Exporting the model", 0.95)
    with tempfile.TemporaryDirectory() as tmp:
        kind = {"kind": "segmentation" if classes else "classification",
                "classes": [c.model_dump() for c in classes or []]}
        onnx_path, sidecar_path = export(detector, Path(tmp), extra=kind,
                                         exemplars=all_exemplars)
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
    result: dict[str, Any] = {
        "ImageAUROC": image_auroc, "PixelAUROC": pixel_auroc, "F1Score": at_threshold["f1"],
        "Precision": at_threshold["precision"], "Recall": at_threshold["recall"],
        "Threshold": calibration.threshold, "ThresholdMethod": calibration.method,
        "PerformanceMethod": "held-out" if len(train_anomalous) >= MIN_TRAIN_ANOMALIES or not labels_a.any()
        else "cross-validated",
        "MaskIoU": float(np.mean(ious)) if ious else None, "MaskIoUImages": len(ious),
        "ImageScoreRule": "top-k minus mean" if rule.subtract_background else "top-k",
        "ConfusionMatrix": {k: at_threshold[k] for k in ("tp", "fp", "fn", "tn")},
        "TestImages": {"normal": int((labels_a == 0).sum()), "anomaly": int((labels_a == 1).sum())},
        "TrainingImages": {"normal": len(normals), "anomaly": len(train_anomalies)},
        "Detector": detector.config_dict(), "Stats": detector.stats, "Timings": timings,
        "ModelKind": kind["kind"],
    }
    if classes:
        result |= by_class.result()
        if exemplars is not None:
            result["ClassesLearnedFrom"] = ("test dataset masks, judged leave-one-image-out"
                                            if exemplars.from_test else "training dataset masks")
            result["ClassesWithoutExamples"] = exemplars.unseen
    shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()
             if k in ("ImageAUROC", "PixelAUROC", "F1Score", "Precision", "Recall", "Threshold",
                      "ThresholdMethod")}
    html_report = report.render(
        title=title, metrics={**shown, **result["TestImages"]},
        normal_scores=scores_a[labels_a == 0], anomaly_scores=scores_a[labels_a == 1],
        threshold=calibration.threshold, curve=curve,
        false_positives=[c for *_, c in sorted(worst_fp, key=lambda t: -t[0])
                         if c.score >= calibration.threshold],
        false_negatives=[c for *_, c in sorted(worst_fn, key=lambda t: -t[0])
                         if c.score < calibration.threshold],
        vmin=float(vmin), vmax=float(vmax),
    )
    performance = {"F1Score": at_threshold["f1"], "Precision": at_threshold["precision"],
                   "Recall": at_threshold["recall"]}
    return TrainingOutput(model_onnx, sidecar, "\n".join(lines) + "\n", result, html_report, performance,
                          timings)


def _scoring_rules(config: DetectorConfig) -> list[Scoring]:
    """The image-score rules a training compares: top-k alone, and minus the image's mean level.
    Neither wins everywhere (measured, docs/benchmarks.md): on magnetic tiles, with large defects and steady
    texture, subtracting the mean hid defects (0.83 against 0.87 image AUROC); on grass it removed
    the spread between normal images (0.66 -> 0.82)."""
    return [Scoring(top_k=config.top_k, subtract_background=b) for b in (False, True)]


def _choose_scoring(config: DetectorConfig, scores: dict[Scoring, np.ndarray], labels: np.ndarray) -> Scoring:
    """With labelled anomalies, the rule that ranks them best (image AUROC; ties keep the
    configured rule); without, the configured rule. A choice between two fixed rules on the
    evaluation images: a small optimism docs/benchmarks.md states."""
    default = Scoring(top_k=config.top_k, subtract_background=config.subtract_background)
    if labels.all() or not labels.any():
        return default
    ranked = {rule: metrics.auroc(values, labels) for rule, values in scores.items()}
    return max(ranked, key=lambda rule: (ranked[rule], rule == default))


def train_anomaly_scores(detector: Detector, fetch: FetchBlob, entries: list[dict],
                         config: DetectorConfig) -> np.ndarray:
    """Scores of the training set's anomalous images (training never fits the bank on them)."""
    if not entries:
        return np.empty(0)
    return np.concatenate([detector.score(*batch)[0]
                           for batch in _batches(fetch, entries, config.image_size, config.batch_size)])


def _threshold(detector: Detector, train_anomalous: np.ndarray, scores: np.ndarray,
               labels: np.ndarray) -> tuple[anomaly_model.Calibration, np.ndarray]:
    """The model's calibration and each test image's prediction as reported. Labelled anomalies:
    the training set's when it has a few (the test set stays held out), else the test set's own
    (then the reported predictions are cross-validated). Normal images only: the normal rule."""
    loo = detector.loo_scores
    if len(train_anomalous) >= MIN_TRAIN_ANOMALIES:
        calibration = detector.calibrate(loo, train_anomalous)
        return calibration, scores >= calibration.threshold
    if labels.any():
        calibration = detector.calibrate(np.concatenate([loo, scores[labels == 0]]), scores[labels == 1])
        predicted = anomaly_model.cross_validated_predictions(scores, labels, loo, seed=detector.config.seed)
        return calibration, predicted
    calibration = detector.calibrate(loo, None)
    return calibration, scores >= calibration.threshold

