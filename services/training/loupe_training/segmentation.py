"""Segmentation models: which anomaly classes a model knows, how it tells them apart, and how well.

As in Lookout, a model trained on datasets whose anomalous images have masks is a segmentation
model; its classes are the anomaly classes of the masks' colour maps (a mask without one is white
on black: one class, `anomaly`). With two or more classes, each class gets a prototype: the mean
direction of the backbone's patch features under that class's pixels in the labelled masks (the
training dataset's, else the test dataset's, then judged leave-one-image-out). At inference every
flagged region takes the class whose prototype its patches resemble most (cosine), see
loupe_models.anomaly_model.classify_regions.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from loupe_models import anomaly_model
from loupe_models.anomaly_model import GENERIC_CLASS, AnomalyClassSpec
from loupe_models.preprocess import Placement, decode_pixels

FetchBlob = Callable[[str], bytes]
PATCH_SHARE = 0.3  # a patch belongs to a class when that class covers this share of it


def model_classes(train_entries: list[dict], test_entries: list[dict]) -> list[AnomalyClassSpec] | None:
    """The anomaly classes of a segmentation model, training dataset first; None for a
    classification model (no anomalous image has a mask)."""
    masked = [e for e in [*train_entries, *test_entries] if e["label"] == 1 and e.get("mask_key")]
    if not masked:
        return None
    classes: dict[str, AnomalyClassSpec] = {}
    for entry in masked:
        for spec in entry.get("anomaly_classes") or [GENERIC_CLASS.model_dump()]:
            spec = AnomalyClassSpec.model_validate(spec)
            classes.setdefault(spec.name, spec)  # the first colour given to a name is the model's
    return list(classes.values())


def class_mask(fetch: FetchBlob, entry: dict, classes: list[AnomalyClassSpec]) -> np.ndarray:
    """(height, width) class index per pixel of the entry's mask, -1 for background."""
    index = {c.name: i for i, c in enumerate(classes)}
    with Image.open(io.BytesIO(fetch(entry["mask_key"]))) as mask:
        if not entry.get("anomaly_classes"):  # white on black
            out = np.full((mask.height, mask.width), -1, np.int32)
            out[np.asarray(mask.convert("L")) > 127] = index.get(GENERIC_CLASS.name, 0)
            return out
        rgb = np.asarray(mask.convert("RGB"), dtype=np.uint32)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    out = np.full(packed.shape, -1, np.int32)
    for spec in entry["anomaly_classes"]:
        out[packed == int(spec["color"][1:], 16)] = index[spec["name"]]
    return out


def patch_classes(mask: np.ndarray, place: Placement, canvas: int, grid: tuple[int, int], count: int) -> np.ndarray:
    """The mask on the feature grid: (h, w) class index per patch, -1 where no class covers
    PATCH_SHARE of it; a class present in the mask but on no patch gets its best-covered patch."""
    on_canvas = np.full((canvas, canvas), -1, np.int32)
    resized = Image.fromarray(mask).resize((place.width, place.height), Image.Resampling.NEAREST)
    place.crop(on_canvas)[...] = np.asarray(resized)
    h, w = grid
    shares = np.stack([np.asarray(Image.fromarray((on_canvas == k).astype(np.float32), "F").resize(
        (w, h), Image.Resampling.BOX)) for k in range(count)])
    out = np.where(shares.max(axis=0) >= PATCH_SHARE, shares.argmax(axis=0), -1).astype(np.int32)
    for k in range(count):
        if (mask == k).any() and not (out == k).any():
            out.flat[int(shares[k].argmax())] = k
    return out


@dataclass
class ClassPrototypes:
    """Per image, per class: the sum of its unit patch features under that class and how many."""

    classes: list[AnomalyClassSpec]
    dim: int
    from_test: bool = False
    contributions: dict[str, np.ndarray] = field(default_factory=dict)  # source-ref -> (K, D)

    def add(self, source_ref: str, features: np.ndarray, patches: np.ndarray) -> None:
        unit = features / np.maximum(np.linalg.norm(features, axis=-1, keepdims=True), 1e-12)
        sums = np.zeros((len(self.classes), self.dim), np.float64)
        for k in range(len(self.classes)):
            if (patches == k).any():
                sums[k] = unit[patches == k].sum(axis=0)
        self.contributions[source_ref] = sums

    def prototypes(self, leave_out: str | None = None) -> np.ndarray:
        """(K, D) unit rows; `leave_out`: without that image's contribution."""
        total = sum(self.contributions.values(), np.zeros((len(self.classes), self.dim)))
        if leave_out in self.contributions:
            total = total - self.contributions[leave_out]
        return (total / np.maximum(np.linalg.norm(total, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    @property
    def unseen(self) -> list[str]:
        """Classes that no labelled mask showed on a feature patch: they have no prototype."""
        seen = np.abs(sum(self.contributions.values(), np.zeros((len(self.classes), self.dim)))).sum(axis=1) > 0
        return [c.name for c, ok in zip(self.classes, seen, strict=True) if not ok]


def patch_scores(features: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """(h, w, D) features -> (h*w, K) cosine similarity to each prototype (the graph's class_scores)."""
    q = features.reshape(-1, features.shape[-1])
    return (q @ prototypes.T) / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)


def learn(features: Callable[[np.ndarray], np.ndarray], fetch: FetchBlob, entries: list[dict],
          classes: list[AnomalyClassSpec], size: int, grid: tuple[int, int], dim: int,
          from_test: bool) -> ClassPrototypes:
    """Prototypes from the labelled masks of `entries` (anomalous images with masks)."""
    learned = ClassPrototypes(classes, dim, from_test)
    for entry in entries:
        pixels, place = decode_pixels(fetch(entry["blob_key"]), size)
        patches = patch_classes(class_mask(fetch, entry, classes), place, size, grid, len(classes))
        learned.add(entry["source_ref"], features(pixels[None])[0], patches)
    return learned


@dataclass
class ClassEvaluation:
    """Per-class figures over the flagged defective test images with labelled masks: how often the
    class the model paints (the most of, on the defect) is the defect's own (the one covering most
    of it), and each class's IoU over all those images."""

    classes: list[AnomalyClassSpec]
    right: int = 0
    judged: int = 0
    intersection: np.ndarray = field(init=False)
    union: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.intersection = np.zeros(len(self.classes))
        self.union = np.zeros(len(self.classes))

    def add(self, predicted: np.ndarray, truth: np.ndarray) -> None:
        """(height, width) class indices, -1 background, of one flagged image."""
        defect = truth >= 0
        if not defect.any():
            return
        painted = predicted[defect & (predicted >= 0)]
        if painted.size == 0:
            painted = predicted[predicted >= 0]
        own = np.bincount(truth[defect], minlength=len(self.classes)).argmax()
        self.judged += 1
        self.right += int(painted.size > 0 and np.bincount(painted, minlength=len(self.classes)).argmax() == own)
        for k in range(len(self.classes)):
            self.intersection[k] += ((predicted == k) & (truth == k)).sum()
            self.union[k] += ((predicted == k) | (truth == k)).sum()

    def result(self) -> dict:
        return {
            "ClassAccuracy": self.right / self.judged if self.judged else None,
            "ClassAccuracyImages": self.judged,
            "AnomalyClasses": [{"Name": c.name, "Color": c.color,
                                "IoU": float(i / u) if u else None}
                               for c, i, u in zip(self.classes, self.intersection, self.union, strict=True)],
        }


def predicted_classes(region: np.ndarray, pixel_threshold: float, scores: np.ndarray | None, grid: tuple[int, int],
                      place: Placement, canvas: int, size: tuple[int, int]) -> np.ndarray:
    """What inference paints for a flagged image: (height, width) class index, -1 background."""
    mask = anomaly_model.anomaly_mask(region, pixel_threshold, size)
    on_image = None if scores is None else anomaly_model.class_scores_on_image(scores, grid, place, canvas, size)
    return anomaly_model.classify_regions(mask, on_image)
