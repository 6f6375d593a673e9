"""The anomaly model format: one owner for what training writes and inference reads.

A model is `model.onnx` (pixels (1, 3, S, S), RGB 0..255 letterboxed by preprocess.to_pixels ->
anomaly_map (1, 1, S, S), and for a segmentation model with two or more anomaly classes
class_scores (h*w, K): each feature patch's cosine similarity to its nearest exemplar of each class) and
`model.json`, the Sidecar below. Everything that turns the map into
a decision lives here, in numpy, and is called by both sides: the image score, the threshold
rules, the confidence formula and the mask rule. The threshold is never in the graph, so a caller
can move it per request.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from scipy import ndimage

from loupe_edge import rules

from .preprocess import RESIZE, Placement, resize_bilinear

FORMAT: Final = "loupe-patchcore-v2"
# Normal-only threshold: the normal leave-one-out scores' mean plus this many standard deviations.
NORMAL_SIGMAS = 3.0
CV_FOLDS = 5


class Calibration(BaseModel):
    threshold: float
    temperature: float = Field(gt=0, description="logistic temperature of the confidence")
    normal_mean: float
    normal_std: float
    method: Literal["normal-distribution", "f1-optimal"]


class Scoring(BaseModel):
    model_config = ConfigDict(frozen=True)

    top_k: int = Field(gt=0, description="image score: mean of the k highest map pixels on the image")
    subtract_background: bool = Field(description="minus the image's own mean map level")


class ModelInput(BaseModel):
    name: Literal["pixels"] = "pixels"
    shape: list[int]
    layout: Literal["NCHW"] = "NCHW"
    channels: Literal["RGB"] = "RGB"
    range: list[int] = [0, 255]
    resize: Literal["letterbox-pillow-bilinear"] = RESIZE

    @property
    def size(self) -> int:
        return self.shape[-1]


class AnomalyClassSpec(BaseModel):
    name: str
    color: str = Field(description='"#rrggbb" as the training dataset\'s colour map writes it')


# Sidecars written before models had a kind segmented with this one class; so do segmentation
# models trained on white-on-black masks without a colour map.
GENERIC_CLASS = AnomalyClassSpec(name=rules.GENERIC[0], color=rules.GENERIC[1])
BACKGROUND_CLASS = AnomalyClassSpec(name=rules.BACKGROUND[0], color=rules.BACKGROUND[1])


class Sidecar(BaseModel):
    model_config = ConfigDict(extra="allow")

    format: Literal["loupe-patchcore-v2"] = FORMAT
    input: ModelInput
    threshold: float
    pixel_threshold: float = Field(description="anomaly-map level normal images stay under")
    calibration: Calibration
    scoring: Scoring
    detector: dict[str, Any] = {}
    stats: dict[str, Any] = {}
    backbone: dict[str, Any] = {}
    onnx_sha256: str = ""
    versions: dict[str, Any] = {}
    kind: Literal["classification", "segmentation"] = Field(
        "segmentation", description="as in Lookout: a segmentation model was trained with anomaly masks and "
        "answers with Anomalies and an AnomalyMask; a classification model answers IsAnomalous and "
        "Confidence only")
    classes: list[AnomalyClassSpec] = Field(
        default_factory=lambda: [GENERIC_CLASS], description="a segmentation model's anomaly classes, in the "
        "order of the graph's class_scores columns")


# --- image score ---------------------------------------------------------------------------------

def image_score(canvas_map: np.ndarray, place: Placement, scoring: Scoring) -> float:
    """The image score (loupe_edge.rules.image_score) of a canvas-sized anomaly map."""
    return rules.image_score(place.crop(canvas_map), scoring.top_k, scoring.subtract_background)


# --- threshold rules -----------------------------------------------------------------------------

def f1_optimal_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold (midway between two sorted scores) maximising F1; the middle of the best run."""
    order = np.argsort(scores, kind="mergesort")
    s, y = np.asarray(scores, np.float64)[order], np.asarray(labels)[order].astype(bool)
    candidates = np.concatenate([[s[0] - 1e-6], (s[1:] + s[:-1]) / 2, [s[-1] + 1e-6]])
    # Predicting "anomalous" for s >= candidate i flags the images from i on.
    flagged_positives = np.concatenate([np.cumsum(y[::-1])[::-1], [0]])
    flagged = np.arange(len(s), -1, -1)
    positives = y.sum()
    f1 = 2 * flagged_positives / np.maximum(flagged + positives, 1)
    best = np.flatnonzero(np.isclose(f1, f1.max(), rtol=0, atol=1e-12))
    return float(np.median(candidates[best]))


def _fit_temperature(scores: np.ndarray, labels: np.ndarray, threshold: float, start: float) -> float:
    """Maximum-likelihood logistic temperature with the threshold fixed (1-D Newton on 1/T)."""
    x = scores - threshold
    a = 1.0 / max(start, 1e-6)
    for _ in range(50):
        p = 1 / (1 + np.exp(-np.clip(a * x, -50, 50)))
        gradient = float(((labels - p) * x).sum()) - 1e-3 * a  # tiny prior keeps separable data finite
        hessian = float(-(p * (1 - p) * x * x).sum()) - 1e-3
        step = gradient / hessian
        a = max(a - step, 1e-6)
        if abs(step) < 1e-8:
            break
    return 1.0 / a


def calibrate(normal_scores: np.ndarray, anomaly_scores: np.ndarray | None = None) -> Calibration:
    """Normal scores only: mean + NORMAL_SIGMAS standard deviations. With anomalous scores: the
    F1-optimal threshold and a fitted temperature."""
    normal = np.asarray(normal_scores, dtype=np.float64)
    mean = float(normal.mean())
    std = max(float(normal.std(ddof=1)) if len(normal) > 1 else abs(mean) * 0.1, 1e-6)
    if anomaly_scores is None or len(anomaly_scores) == 0:
        return Calibration(threshold=mean + NORMAL_SIGMAS * std, temperature=std, normal_mean=mean,
                           normal_std=std, method="normal-distribution")
    anomalous = np.asarray(anomaly_scores, dtype=np.float64)
    scores = np.concatenate([normal, anomalous])
    labels = np.concatenate([np.zeros(len(normal)), np.ones(len(anomalous))])
    threshold = f1_optimal_threshold(scores, labels)
    temperature = _fit_temperature(scores, labels, threshold, start=std)
    return Calibration(threshold=threshold, temperature=temperature, normal_mean=mean, normal_std=std,
                       method="f1-optimal")


def cross_validated_predictions(scores: np.ndarray, labels: np.ndarray, extra_normal: np.ndarray,
                                folds: int = CV_FOLDS, seed: int = 0) -> np.ndarray:
    """Each labelled image's prediction by a threshold calibrated without it (stratified k-fold;
    `extra_normal`, e.g. leave-one-out training scores, always in the calibration set). What the
    model reports is then measured on images its threshold did not see."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(scores), int)
    for cls in (False, True):
        members = rng.permutation(np.flatnonzero(labels == cls))
        fold[members] = np.arange(len(members)) % folds
    predicted = np.zeros(len(scores), bool)
    for f in range(folds):
        held = fold == f
        if not held.any():
            continue
        rest = ~held
        calibration = calibrate(np.concatenate([extra_normal, scores[rest & ~labels]]), scores[rest & labels])
        predicted[held] = scores[held] >= calibration.threshold
    return predicted


# --- confidence, mask and anomaly classes: loupe_edge.rules, shared with the edge runtime ----------

probability = rules.probability
confidence = rules.confidence
mask_level = rules.mask_level
hex_rgb = rules.hex_rgb


def _resize_float(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pillow's bilinear resize of a float map in fixed pass order (loupe_edge.pixels.resize_float
    equals it; Pillow is faster)."""
    return np.asarray(resize_bilinear(Image.fromarray(values.astype(np.float32), "F"), size))


def map_on_image(region: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The map's image region resized to the image's own `size` (width, height)."""
    return _resize_float(region, size)


def anomaly_mask(region: np.ndarray, pixel_threshold: float, size: tuple[int, int],
                 on_image: np.ndarray | None = None) -> np.ndarray:
    """A flagged image's (height, width) bool mask (loupe_edge.rules.anomaly_mask)."""
    return rules.anomaly_mask(region, pixel_threshold, size,
                              map_on_image(region, size) if on_image is None else on_image)


def classify_regions(mask: np.ndarray, scores: np.ndarray | None,
                     heat: np.ndarray | None = None) -> np.ndarray:
    """Each flagged region's anomaly class (loupe_edge.rules.classify_regions, regions by scipy)."""
    return rules.classify_regions(mask, scores, heat, ndimage.label)


def class_scores_on_image(class_scores: np.ndarray, grid: tuple[int, int], place: Placement, canvas: int,
                          size: tuple[int, int]) -> np.ndarray:
    """(h*w, K) patch class scores -> (height, width, K) on the image (loupe_edge.rules)."""
    return rules.class_scores_on_image(class_scores, grid, place, canvas, size, _resize_float)
