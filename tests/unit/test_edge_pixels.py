"""The edge runtime's numpy pixel work equals the Pillow and scipy calls the hosted model makes
(loupe_models.preprocess.resize_bilinear, scipy.ndimage.label): bit for bit on 8-bit images and
float maps, the same region numbers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from loupe_edge.pixels import label_regions, resize_float, resize_rgb
from loupe_models.preprocess import resize_bilinear

SIZES = [((640, 480), (224, 168)), ((300, 700), (96, 224)), ((90, 500), (40, 224)), ((1024, 768), (224, 168)), ((97, 333), (45, 153)), ((64, 64), (200, 200)),
         ((300, 40), (224, 30)), ((224, 168), (224, 100)), ((4096, 31), (224, 2)), ((13, 11), (1000, 7))]


@pytest.mark.parametrize(("source", "target"), SIZES)
def test_rgb_resize_is_pillows_bilinear_bit_for_bit(source, target):
    rng = np.random.default_rng(sum(source) + sum(target))
    smooth = rng.integers(0, 256, (source[1] // 8 + 2, source[0] // 8 + 2, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(smooth).resize(source, Image.Resampling.BICUBIC))
    image = np.clip(base.astype(int) + rng.integers(-40, 41, base.shape), 0, 255).astype(np.uint8)
    expected = np.asarray(resize_bilinear(Image.fromarray(image), target))
    assert np.array_equal(resize_rgb(image, target), expected)


@pytest.mark.parametrize(("source", "target"), SIZES)
def test_float_resize_is_pillows_bilinear_bit_for_bit(source, target):
    rng = np.random.default_rng(7 + sum(source))
    values = rng.normal(0.3, 0.2, (source[1], source[0])).astype(np.float32)
    expected = np.asarray(resize_bilinear(Image.fromarray(values, "F"), target))
    assert np.array_equal(resize_float(values, target), expected)


@pytest.mark.parametrize("seed", range(6))
def test_regions_are_numbered_as_scipy_numbers_them(seed):
    rng = np.random.default_rng(seed)
    noise = rng.random((120, 90))
    mask = ndimage.uniform_filter(noise, 5) > 0.55 if seed % 2 else noise > 0.6  # blobs, then speckle
    labels, count = label_regions(mask)
    expected, expected_count = ndimage.label(mask)
    assert count == expected_count and np.array_equal(labels, expected)


def test_shapes_that_wrap_around_join_into_one_region():
    mask = np.zeros((7, 9), bool)
    mask[1, 1:8] = mask[1:6, 1] = mask[1:6, 7] = mask[5, 4:8] = True  # a U joined late, plus a hook
    mask[3:6, 4] = True
    mask[6, 0] = True  # diagonal neighbours are separate regions (4-connectivity)
    labels, count = label_regions(mask)
    expected, expected_count = ndimage.label(mask)
    assert count == expected_count == 2 and np.array_equal(labels, expected)
    assert label_regions(np.zeros((4, 5), bool))[1] == 0
