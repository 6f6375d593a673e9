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
from typing import Final

import numpy as np
from PIL import Image

from loupe_common.images import as_seen
from loupe_edge.rules import Placement, canvas, margin_for  # noqa: F401 (re-exported: training reads them here)

RESIZE: Final = "letterbox-pillow-bilinear"


def resize_bilinear(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Pillow's bilinear resize as two explicit passes, across then down. Pillow picks the order of
    its two passes itself (version 13 goes down first on some tall images), and the order changes the
    8-bit rounding; fixing it lets the edge runtime's numpy resize (loupe_edge.pixels) give the same
    pixels, so a bundle scores an image exactly as the hosted model does."""
    width, height = size
    if image.width != width:
        image = image.resize((width, image.height), Image.Resampling.BILINEAR)
    if image.height != height:
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    return image


def to_pixels(image: Image.Image, size: int) -> tuple[np.ndarray, Placement]:
    """(3, size, size) pixels and where the image lies on them."""
    rgb = image.convert("RGB")
    place = Placement.of(*rgb.size, size)
    if rgb.size != (place.width, place.height):
        rgb = resize_bilinear(rgb, (place.width, place.height))
    return canvas(np.asarray(rgb), size, place), place


def decode_pixels(data: bytes, size: int) -> tuple[np.ndarray, Placement]:
    """Image bytes -> (3, size, size) pixels and their Placement, the image taken as a person sees
    it (upright, 8-bit: loupe_common.images.as_seen), as the inference workers take it."""
    with Image.open(io.BytesIO(data)) as image:
        return to_pixels(as_seen(image), size)
