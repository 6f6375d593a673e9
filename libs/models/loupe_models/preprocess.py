"""Image -> model input, shared by training and the inference workers so both see the same
pixels: RGB, NCHW float32 in 0..255 on a size x size canvas.

The aspect ratio is kept (letterbox): the image is resized with Pillow's bilinear filter so its
long side spans the canvas less a margin on every side, centred, and the rest of the canvas is
black. Squashing every image to a square stretched real parts of different shapes differently
(magnetic tiles run from 100 to 620 px wide), so the memory bank saw the same surface at many
distortions. The margin keeps the part's own edges away from the canvas edge, where the
backbone's zero padding makes every patch look unusual. The Placement says where the image lies
on the canvas, so scores and masks are read from that region only.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

RESIZE = "letterbox-pillow-bilinear"


def margin_for(size: int) -> int:
    """Black border on each side of the canvas: two stride-8 feature cells at 256 px."""
    return size // 16


@dataclass(frozen=True)
class Placement:
    """Where an image of (width, height) lies on the size x size canvas."""

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


def to_pixels(image: Image.Image, size: int) -> tuple[np.ndarray, Placement]:
    """(3, size, size) pixels and where the image lies on them."""
    rgb = image.convert("RGB")
    place = Placement.of(*rgb.size, size)
    if rgb.size != (place.width, place.height):
        rgb = rgb.resize((place.width, place.height), Image.Resampling.BILINEAR)
    canvas = np.zeros((3, size, size), np.float32)
    place.crop(canvas)[...] = np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1)
    return canvas, place


def decode_pixels(data: bytes, size: int) -> tuple[np.ndarray, Placement]:
    """Decoded bytes -> (3, size, size) pixels and their Placement."""
    with Image.open(io.BytesIO(data)) as image:
        return to_pixels(image, size)
