"""How a Loupe model's anomaly map becomes an answer: one owner, numpy only.

The hosted model (loupe_models.anomaly_model, inference workers) and the edge runtime both call
these: where an image lies on the model's canvas, the image score, the confidence formula, the
mask rule and the anomaly class of each flagged region. Keeping them free of Pillow, scipy and
pydantic is what lets an edge PC run a bundle with numpy and onnxruntime alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .pixels import label_regions, resize_float

# A flagged image's mask: pixels above this share of the way from the image's median map level to
# its peak (or above the pixel threshold, whichever is lower), so a flagged image is never empty.
RELATIVE_MASK_LEVEL = 0.5
HOTTEST_SHARE = 0.1  # a region's class is read from its hottest pixels: the rest is often not the defect

# (name, "#RRGGBB"): Lookout's background entry, and the one class of models trained without a colour map.
BACKGROUND = ("background", "#FFFFFF")
GENERIC = ("anomaly", "#FF0000")

Resize = Callable[[np.ndarray, tuple[int, int]], np.ndarray]


def margin_for(size: int) -> int:
    """Black border on each side of the canvas: two stride-8 feature cells at 256 px."""
    return size // 16


@dataclass(frozen=True)
class Placement:
    """Where an image of (width, height) lies on the size x size canvas (aspect kept, centred)."""

    x: int
    y: int
    width: int
    height: int

    @classmethod
    def of(cls, width: int, height: int, size: int) -> Placement:
        inner = size - 2 * margin_for(size)
        scale = inner / max(width, height)
        w = min(inner, max(1, round(width * scale)))
        h = min(inner, max(1, round(height * scale)))
        return cls((size - w) // 2, (size - h) // 2, w, h)

    def crop(self, canvas_map: np.ndarray) -> np.ndarray:
        """The image's region of a (..., size, size) array."""
        return canvas_map[..., self.y : self.y + self.height, self.x : self.x + self.width]


def canvas(rgb: np.ndarray, size: int, place: Placement) -> np.ndarray:
    """(3, size, size) float32 pixels: the image (already resized to the placement) on black."""
    pixels = np.zeros((3, size, size), np.float32)
    place.crop(pixels)[...] = rgb.astype(np.float32).transpose(2, 0, 1)
    return pixels


def image_score(region: np.ndarray, top_k: int, subtract_background: bool) -> float:
    """Mean of the top-k anomaly-map pixels on the image's own region (the letterbox border is
    not the image), optionally minus that region's mean level."""
    values = region.ravel()
    k = min(top_k, values.size)
    top = float(np.partition(values, values.size - k)[values.size - k :].mean())
    return top - float(values.mean()) if subtract_background else top


def probability(score: float | np.ndarray, threshold: float, temperature: float) -> np.ndarray:
    """p(anomalous) = sigmoid((score - threshold) / temperature)."""
    z = np.clip((np.asarray(score, dtype=np.float64) - threshold) / temperature, -50, 50)
    return 1.0 / (1.0 + np.exp(-z))


def confidence(score: float | np.ndarray, threshold: float, temperature: float) -> np.ndarray:
    """Calibrated probability of the predicted class."""
    p = probability(score, threshold, temperature)
    return np.where(np.asarray(score) >= threshold, p, 1 - p)


def mask_level(region: np.ndarray, pixel_threshold: float) -> float:
    """The map level a flagged image's mask starts at: the pixel threshold, or lower where the
    image's own peak does not reach it (relative to the image's median level)."""
    median, peak = float(np.median(region)), float(region.max())
    return min(pixel_threshold, median + RELATIVE_MASK_LEVEL * (peak - median))


def anomaly_mask(region: np.ndarray, pixel_threshold: float, size: tuple[int, int],
                 on_image: np.ndarray) -> np.ndarray:
    """A flagged image's (height, width) bool mask at the image's own `size` (width, height), from
    the map region resized to it (`on_image`), so the mask follows the map's contours rather than
    blocky canvas pixels; never empty (a one-pixel peak lost in resizing keeps its place)."""
    full = on_image >= mask_level(region, pixel_threshold)
    if not full.any():
        y, x = np.unravel_index(int(region.argmax()), region.shape)
        full[min(int(y * size[1] / region.shape[0]), size[1] - 1),
             min(int(x * size[0] / region.shape[1]), size[0] - 1)] = True
    return full


def class_scores_on_image(class_scores: np.ndarray, grid: tuple[int, int], place: Placement, canvas_size: int,
                          size: tuple[int, int], resize: Resize = resize_float) -> np.ndarray:
    """(h*w, K) patch class scores -> (height, width, K) on the image's own `size` (width, height):
    each column resized to the canvas as the anomaly map is, then the image's region resized."""
    h, w = grid
    out = [resize(place.crop(resize(column.astype(np.float32), (canvas_size, canvas_size))), size)
           for column in class_scores.reshape(h, w, -1).transpose(2, 0, 1)]
    return np.stack(out, axis=-1)


def classify_regions(mask: np.ndarray, scores: np.ndarray | None, heat: np.ndarray | None = None,
                     label: Callable[[np.ndarray], tuple[np.ndarray, int]] = label_regions) -> np.ndarray:
    """(height, width) class index per pixel: -1 background, else one anomaly class per connected
    flagged region: the class whose mean score over the region's hottest pixels (the top
    HOTTEST_SHARE of `heat`, the anomaly map on the image; all of them without it) is highest.
    `scores` (height, width, K), or None for a single class. Measured on MTD (five defect kinds,
    nearest-exemplar scores from 60 labelled tiles, 120 held-out defective tiles, in-process): the
    hottest tenth names 0.61 of the kinds right, the whole region 0.43. `label`: the hosted model passes
    scipy.ndimage.label (faster; tests/unit/test_edge_pixels.py holds the two equal)."""
    classes = np.full(mask.shape, -1, np.int32)
    if scores is None or scores.shape[-1] == 1:
        classes[mask] = 0
        return classes
    labels, count = label(mask)
    if count == 0:
        return classes
    flagged = np.flatnonzero(labels)
    order = np.argsort(labels.flat[flagged], kind="stable")  # each region's pixels in raster order
    regions = np.split(flagged[order],
                       np.cumsum(np.bincount(labels.flat[flagged], minlength=count + 1)[1:-1]))
    flat_scores = scores.reshape(-1, scores.shape[-1])
    for where in regions:
        values = flat_scores[where]
        if heat is not None and len(values) > 1:
            hot = heat.flat[where]
            values = values[hot >= np.quantile(hot, 1 - HOTTEST_SHARE)]
        classes.flat[where] = int(values.mean(axis=0).argmax())
    return classes


def hex_rgb(color: str) -> tuple[int, int, int]:
    value = int(color[1:], 16)
    return (value >> 16) & 255, (value >> 8) & 255, value & 255


def paint_mask(classes: np.ndarray, colors: tuple[str, ...]) -> np.ndarray:
    """(height, width, 3) uint8: the background colour, and each anomaly class's colour on its pixels."""
    # One gather through the colour table: a masked assignment per class took 1.7 s at 4096 x 4096.
    return mask_colours(colors)[classes + 1]


def mask_colours(colors: tuple[str, ...]) -> np.ndarray:
    """(K + 1, 3) uint8: the background's colour, then each anomaly class's (row = class index + 1)."""
    return np.array([hex_rgb(BACKGROUND[1]), *(hex_rgb(c) for c in colors)], np.uint8)
