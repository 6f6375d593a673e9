"""Image -> model input, shared by training and the inference workers so both see the same
pixels: RGB, resized to size x size with Pillow's bilinear filter, NCHW float32 in 0..255."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

RESIZE = "pillow-bilinear"


def to_pixels(image: Image.Image, size: int) -> np.ndarray:
    rgb = image.convert("RGB")
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1).copy()


def decode_pixels(data: bytes, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """(3, size, size) pixels and the original (width, height)."""
    with Image.open(io.BytesIO(data)) as image:
        original = image.size
        return to_pixels(image, size), original
