"""Segmentation models: which anomaly classes a model knows, how it tells them apart, and how well.

As in Lookout, a model trained on datasets whose anomalous images have masks is a segmentation
model; its classes are the anomaly classes of the masks' colour maps (a mask without one is white
on black: one class, `anomaly`). With two or more classes, each class keeps exemplars: the
backbone's patch features under that class's pixels in the labelled masks (the training
dataset's, else the test dataset's, then judged leave-one-image-out), up to MAX_EXEMPLARS per
class. A patch's score for a class is its cosine similarity to the nearest exemplar of that class
(measured on MTD: nearest exemplar 0.83 of defects right on their true regions, one mean
prototype per class 0.68). At inference every flagged region takes the class that its hottest
pixels resemble most, see loupe_models.anomaly_model.classify_regions.

Those hottest pixels are often beside the defect rather than on it, so each labelled image also
gives its HOT_PATCHES hottest patches of the detector's own map, each as the class of the nearest
labelled pixel: the exemplars then cover what inference reads (MTD, 100 labelled tiles, 150
flagged held-out tiles, in-process: largest class right 0.79 -> 0.82; 60 labelled 0.69 -> 0.77).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from loupe_models import anomaly_model
from loupe_models.anomaly_model import GENERIC_CLASS, AnomalyClassSpec
from loupe_models.preprocess import Placement, decode_pixels

from .patchcore.detector import Detector

FetchBlob = Callable[[str], bytes]
PATCH_SHARE = 0.3  # a patch belongs to a class when that class covers this share of it
MAX_EXEMPLARS = 512  # per class, in the exported graph
MAX_CLASSES = 100  # Loupe's limit: the exemplars of 100 classes take about 30 MB of the graph
HOT_PATCHES = 16  # per labelled image: its hottest patches join the exemplars of their nearest class


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


def patch_classes(mask: np.ndarray, place: Placement, canvas: int, grid: tuple[int, int],
                  count: int) -> np.ndarray:
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


def grid_heat(anomaly_map: np.ndarray, place: Placement, grid: tuple[int, int]) -> np.ndarray:
    """(S, S) canvas anomaly map -> (h, w) mean per feature patch; -inf for patches whose centre
    lies outside the image."""
    h, w = grid
    canvas = anomaly_map.shape[-1]
    heat = np.asarray(Image.fromarray(anomaly_map.astype(np.float32), "F").resize((w, h),
                                                                                 Image.Resampling.BOX))
    cy = (np.arange(h) + 0.5) * canvas / h
    cx = (np.arange(w) + 0.5) * canvas / w
    inside = ((cy >= place.y) & (cy < place.y + place.height))[:, None] & (
        (cx >= place.x) & (cx < place.x + place.width))[None, :]
    return np.where(inside, heat, -np.inf)


def with_hot_patches(patches: np.ndarray, heat: np.ndarray, count: int = HOT_PATCHES) -> np.ndarray:
    """`patches` (h, w) class per patch, -1 none, with the `count` hottest patches of `heat` that
    have no class given the class of the nearest patch that has one."""
    if not (patches >= 0).any():
        return patches
    out = patches.copy()
    _, (ny, nx) = ndimage.distance_transform_edt(patches < 0, return_indices=True)
    hottest = np.argsort(heat, axis=None)[::-1][:count]
    hottest = hottest[np.isfinite(heat.flat[hottest]) & (patches.flat[hottest] < 0)]
    out.flat[hottest] = patches[ny.flat[hottest], nx.flat[hottest]]
    return out


@dataclass
class ClassExemplars:
    """Per labelled image, per class: its unit patch features under that class."""

    classes: list[AnomalyClassSpec]
    dim: int
    from_test: bool = False
    seed: int = 0
    contributions: dict[str, list[np.ndarray]] = field(default_factory=dict)  # source-ref -> K arrays (n, D)

    def add(self, source_ref: str, features: np.ndarray, patches: np.ndarray) -> None:
        unit = features / np.maximum(np.linalg.norm(features, axis=-1, keepdims=True), 1e-12)
        self.contributions[source_ref] = [unit[patches == k].astype(np.float32)
                                          for k in range(len(self.classes))]

    def exemplars(self, leave_out: str | None = None) -> np.ndarray:
        """(K, M, D): each class's exemplars, at most MAX_EXEMPLARS (an even sample), padded by
        repeating its own rows (a maximum does not change); zeros for a class never shown.
        `leave_out`: without that image's patches."""
        rng = np.random.default_rng(self.seed)
        rows = []
        for k in range(len(self.classes)):
            found = [parts[k] for ref, parts in self.contributions.items()
                     if ref != leave_out and len(parts[k])]
            rows.append(np.concatenate(found) if found else np.zeros((1, self.dim), np.float32))
        size = min(MAX_EXEMPLARS, max(len(r) for r in rows))
        out = np.zeros((len(rows), size, self.dim), np.float32)
        for k, r in enumerate(rows):
            picked = r[np.sort(rng.choice(len(r), size, replace=False))] if len(r) > size else r
            out[k] = np.resize(picked, (size, self.dim)) if len(picked) < size else picked
        return out

    @property
    def unseen(self) -> list[str]:
        """Classes that no labelled mask showed on a feature patch: they have no exemplar."""
        return [c.name for k, c in enumerate(self.classes)
                if not any(len(parts[k]) for parts in self.contributions.values())]


def patch_scores(features: np.ndarray, exemplars: np.ndarray) -> np.ndarray:
    """(h, w, D) features -> (h*w, K): each patch's cosine similarity to the nearest exemplar of
    each class (the graph's class_scores)."""
    q = features.reshape(-1, features.shape[-1])
    k, m, d = exemplars.shape
    nearest = (q @ exemplars.reshape(k * m, d).T).reshape(len(q), k, m).max(axis=2)
    return nearest / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)


def learn(detector: Detector, fetch: FetchBlob, entries: list[dict], classes: list[AnomalyClassSpec],
          from_test: bool) -> ClassExemplars:
    """Exemplars from the labelled masks of `entries` (anomalous images with masks) and from the
    hottest patches of the fitted detector's maps of them."""
    size, grid = detector.config.image_size, detector.extractor.grid
    learned = ClassExemplars(classes, detector.extractor.dim, from_test)
    for entry in entries:
        pixels, place = decode_pixels(fetch(entry["blob_key"]), size)
        features = detector.features(pixels[None])
        patches = patch_classes(class_mask(fetch, entry, classes), place, size, grid, len(classes))
        heat = grid_heat(detector.anomaly_maps(features)[0], place, grid)
        learned.add(entry["source_ref"], features[0], with_hot_patches(patches, heat))
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
        self.right += int(painted.size > 0
                          and np.bincount(painted, minlength=len(self.classes)).argmax() == own)
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


def predicted_classes(region: np.ndarray, pixel_threshold: float, scores: np.ndarray | None,
                      grid: tuple[int, int], place: Placement, canvas: int,
                      size: tuple[int, int]) -> np.ndarray:
    """What inference paints for a flagged image: (height, width) class index, -1 background."""
    heat = anomaly_model.map_on_image(region, size)
    mask = anomaly_model.anomaly_mask(region, pixel_threshold, size, heat)
    on_image = (None if scores is None
                else anomaly_model.class_scores_on_image(scores, grid, place, canvas, size))
    return anomaly_model.classify_regions(mask, on_image, heat)
