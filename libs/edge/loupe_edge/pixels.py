"""Pixel work in numpy alone, equal to what the hosted model gets from Pillow and scipy.

The hosted model resizes with Pillow's bilinear filter and labels mask regions with
scipy.ndimage.label; an edge PC has neither. `resize_rgb` and `resize_float` follow Pillow's
Resample.c step by step (the same coefficients, the 22-bit fixed point and clipping of 8-bit
images), one pass across then one down as the hosted side asks Pillow for them
(loupe_models.preprocess.resize_bilinear), so the model sees the same pixels bit for bit;
`label_regions` numbers 4-connected regions in raster order as scipy does. tests/unit/test_edge_pixels.py
holds each to its original.
"""

from __future__ import annotations

import math

import numpy as np

_PRECISION_BITS = 32 - 8 - 2  # Pillow's fixed point for 8-bit images


def _coefficients(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(first input index, weights (out_size, ksize), zero past the used taps) of Pillow's bilinear filter
    (precompute_coeffs with support 1)."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    center = (np.arange(out_size) + 0.5) * scale
    xmin = np.maximum(np.trunc(center - support + 0.5).astype(np.int64), 0)
    xmax = np.minimum(np.trunc(center + support + 0.5).astype(np.int64), in_size) - xmin
    x = np.arange(ksize)
    distance = np.abs(((x[None, :] + xmin[:, None]) - center[:, None] + 0.5) * (1.0 / filterscale))
    weights = np.where(distance < 1.0, 1.0 - distance, 0.0)
    weights[x[None, :] >= xmax[:, None]] = 0.0
    total = np.zeros(out_size)
    for j in range(ksize):  # in C's order: the sum's rounding matters for exact equality
        total += weights[:, j]
    weights = np.divide(weights, total[:, None], out=weights, where=total[:, None] != 0)
    return xmin, weights


def _fixed_point(weights: np.ndarray) -> np.ndarray:
    scaled = weights * (1 << _PRECISION_BITS)
    return np.trunc(np.where(weights < 0, scaled - 0.5, scaled + 0.5)).astype(np.int64)


def _down(rows: np.ndarray, out_size: int, weights_for, total: np.ndarray) -> np.ndarray:
    """Add each output row's taps (whole input rows, which numpy gathers fast) into `total`."""
    xmin, weights = weights_for(rows.shape[0])
    shape = (out_size,) + (1,) * (rows.ndim - 1)
    for j in range(weights.shape[1]):
        index = np.minimum(xmin + j, rows.shape[0] - 1)  # past the used count the weight is 0
        total += rows[index] * weights[:, j].reshape(shape)
    return total


def _along(image: np.ndarray, axis: int, work) -> np.ndarray:
    """`work` (a pass down axis 0) applied along `axis`: across is down the transposed image."""
    if axis == 0:
        return work(image)
    return np.ascontiguousarray(work(np.ascontiguousarray(np.swapaxes(image, 0, 1))).swapaxes(0, 1))


def _pass_8bit(image: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    """One 8-bit pass along `axis` (1: width, 0: height) of a (height, width, channels) image: int32
    sums of uint8 x 22-bit weights (exact: the weights sum to 2**22), rounded and clipped as Pillow does."""
    def weights_for(in_size: int):
        xmin, weights = _coefficients(in_size, out_size)
        return xmin, _fixed_point(weights).astype(np.int32)

    def work(rows: np.ndarray) -> np.ndarray:
        total = np.full((out_size, *rows.shape[1:]), 1 << (_PRECISION_BITS - 1), np.int32)
        return np.clip(_down(rows, out_size, weights_for, total) >> _PRECISION_BITS, 0, 255).astype(np.uint8)
    return _along(image, axis, work)


def _pass_float(image: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    """One pass of a float map: float64 sums, stored as float32, as Pillow's C does."""
    def weights_for(in_size: int):
        return _coefficients(in_size, out_size)

    def work(rows: np.ndarray) -> np.ndarray:
        total = np.zeros((out_size, *rows.shape[1:]), np.float64)
        return _down(rows, out_size, weights_for, total).astype(np.float32)
    return _along(image, axis, work)


def _two_passes(image: np.ndarray, size: tuple[int, int], one_pass) -> np.ndarray:
    """Across, then down: the order loupe_models.preprocess.resize_bilinear fixes for Pillow."""
    width, height = size
    out = image
    if out.shape[1] != width:
        out = one_pass(out, width, 1)
    if out.shape[0] != height:
        out = one_pass(out, height, 0)
    return out


def resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A (height, width, 3) uint8 image resized to `size` (width, height) as Pillow's bilinear
    filter does it, across then down."""
    out = _two_passes(image, size, _pass_8bit)
    return out if out is not image else image.copy()


def resize_float(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A (height, width) float map resized to `size` (width, height) as Pillow's bilinear filter
    does an "F" image, across then down: float64 sums, float32 after each pass."""
    return _two_passes(values.astype(np.float32), size, _pass_float)


def label_regions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """(labels, count) of the 4-connected regions of a bool mask, numbered 1.. in raster order of
    their first pixel, as scipy.ndimage.label numbers them. Works on runs of each row."""
    height, width = mask.shape
    edges = np.diff(np.pad(mask.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)
    parent = np.arange(len(starts))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first = np.searchsorted(rows, np.arange(height + 1))
    for row in range(height - 1):
        a, a_end, b, b_end = first[row], first[row + 1], first[row + 1], first[row + 2]
        while a < a_end and b < b_end:  # two runs touch when their columns overlap
            if starts[a] < ends[b] and starts[b] < ends[a]:
                ra, rb = root(a), root(b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)  # the earlier run stays the root
            if ends[a] <= ends[b]:
                a += 1
            else:
                b += 1
    roots = np.array([root(i) for i in range(len(starts))], np.int64)
    unique_roots, number = np.unique(roots, return_inverse=True)  # roots are each region's first run
    labels = np.zeros((height, width), np.int32)
    lengths = ends - starts
    flat = (np.repeat(rows * width + starts - (np.cumsum(lengths) - lengths), lengths)
            + np.arange(lengths.sum()))
    labels.flat[flat] = np.repeat(number + 1, lengths)
    return labels, len(unique_roots)
