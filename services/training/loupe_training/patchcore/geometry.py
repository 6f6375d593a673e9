"""Linear operators written as matrices, so numpy and the exported ONNX graph compute the very
same thing (MatMul with the same constants): bilinear resizing and Gaussian blurring."""

from __future__ import annotations

import numpy as np


def bilinear_matrix(out_size: int, in_size: int) -> np.ndarray:
    """Rows interpolate linearly with half-pixel centres (as torch/ONNX 'half_pixel'), edges clamped."""
    matrix = np.zeros((out_size, in_size), dtype=np.float64)
    scale = in_size / out_size
    for i in range(out_size):
        src = min(max((i + 0.5) * scale - 0.5, 0.0), in_size - 1)
        low = int(np.floor(src))
        high = min(low + 1, in_size - 1)
        frac = src - low
        matrix[i, low] += 1 - frac
        matrix[i, high] += frac
    return matrix


def gaussian_matrix(size: int, sigma: float) -> np.ndarray:
    """1-D Gaussian blur with reflected borders as a (size x size) matrix; identity if sigma <= 0."""
    if sigma <= 0:
        return np.eye(size)
    radius = int(np.ceil(4 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    matrix = np.zeros((size, size), dtype=np.float64)
    for i in range(size):
        for offset, weight in zip(range(-radius, radius + 1), taps, strict=True):
            j = i + offset
            while j < 0 or j >= size:  # reflect (without repeating the edge), as scipy 'mirror'
                j = -j if j < 0 else 2 * (size - 1) - j
            matrix[i, j] += weight
    return matrix


def map_operators(grid: tuple[int, int], size: int, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(Ry, Rx) such that Ry @ patch_map @ Rx.T is the patch map upsampled to size x size and blurred."""
    ry = gaussian_matrix(size, sigma) @ bilinear_matrix(size, grid[0])
    rx = gaussian_matrix(size, sigma) @ bilinear_matrix(size, grid[1])
    return ry.astype(np.float32), rx.astype(np.float32)


def average_pool3(x: np.ndarray) -> np.ndarray:
    """3x3 average over (..., H, W) with stride 1, padding 1, not counting the padding (ONNX
    AveragePool count_include_pad=0)."""
    padded = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)])
    ones = np.pad(np.ones(x.shape[-2:], dtype=x.dtype), 1)
    total = np.zeros_like(x)
    count = np.zeros(x.shape[-2:], dtype=x.dtype)
    h, w = x.shape[-2:]
    for dy in range(3):
        for dx in range(3):
            total += padded[..., dy : dy + h, dx : dx + w]
            count += ones[dy : dy + h, dx : dx + w]
    return total / count
