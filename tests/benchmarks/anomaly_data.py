"""Deterministic anomaly-detection benchmark data built from real images bundled in scikit-image.

No downloads: every source below ships inside the scikit-image wheel (``skimage/data/*.png|jpg``);
images that ``skimage.data`` fetches on first use are not used.

Categories (source image -> what a "normal" view is):

* ``brick``  -- ``skimage.data.brick()`` (512x512 grey brick wall): random crops of half the source side,
  rotation within +-3 degrees.
* ``grass``  -- ``skimage.data.grass()`` (512x512 grey grass): random crops of half the source side, any
  rotation (the texture has no preferred direction).
* ``gravel`` -- ``skimage.data.gravel()`` (512x512 grey gravel): as grass.
* ``print``  -- ``skimage.data.page()`` (191x384 grey scan of a printed book page): random crops of 3/4 of
  the page height anywhere on the page, rotation within +-1 degree.
* ``coins``  -- ``skimage.data.coins()`` (303x384 grey photo of 24 Greek coins on a cloth): an aligned
  "tray" -- one fixed crop of 92% of the height with small jitter (1% shift, +-1.5 degrees).
* ``cup``    -- ``skimage.data.coffee()`` (400x600 colour photo of an espresso cup on a saucer): an aligned
  object -- one fixed crop of 93% of the height around the cup with small jitter; defects land on the
  cup or saucer only.

All views get a small brightness / contrast / illumination-gradient jitter (plus a white-balance jitter
for the colour category) and a faint sensor noise. The grey sources are written as RGB.

Defect kinds (each returns the modified image and a binary mask of the pixels it changed that matter):
``scratch``, ``crack``, ``stain``, ``hole``, ``missing``, ``contamination`` -- see the functions named
``_defect_<kind>``. An anomalous test image is a fresh view (its own crop, distinct from all normal
views) with one defect, sometimes two.

Layout written by :func:`generate` (per category)::

    <root>/<category>/train/normal/NNN.png
    <root>/<category>/test/normal/NNN.png
    <root>/<category>/test/anomaly/NNN.png
    <root>/<category>/test/mask/NNN.png        (single-channel 0/255, same name as the anomalous image)
    <root>/<category>/train.manifest           (Lookout for Vision JSON Lines)
    <root>/<category>/test.manifest
    <root>/<category>/defects.json             (defect kinds and mask areas per anomalous image)

Script: ``python tests/benchmarks/anomaly_data.py OUT_DIR [--size 256] [--train 30] [--test-normal 20]
[--test-anomalous 20] [--seed 0]`` -- also writes ``OUT_DIR/preview.png`` (a contact sheet).

Dependencies: numpy, Pillow, scikit-image (and scipy, which scikit-image requires).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi

__all__ = [
    "CATEGORIES",
    "CATEGORY_SPECS",
    "DEFECT_AREA_BOUNDS",
    "DEFECT_KINDS",
    "Sample",
    "apply_defect",
    "clean_view",
    "generate",
    "make_sample",
    "write_preview",
]

CREATION_DATE = "2026-11-21T00:00:00.000"
JOB_NAME = "loupe-bench"
PNG_COMPRESS_LEVEL = 1  # fast, and no bigger than level 6 on these noisy images
NOISE_SIGMA = 1.2 / 255.0


# --------------------------------------------------------------------------------------------
# Categories


@dataclass(frozen=True)
class CategorySpec:
    name: str
    source: str  # skimage.data loader
    description: str
    aligned: bool  # production-line object: one nominal crop with small jitter
    crop: float  # crop side as a fraction of the source's shorter side
    max_rotation: float  # degrees (uniform in +-max)
    center: tuple[float, float] | None = None  # nominal crop centre (row, col) in source pixels
    jitter: float = 0.0  # std of the centre jitter, as a fraction of the crop side
    roi: tuple[tuple[float, float, float, float], ...] = ()  # ellipses (row, col, r_row, r_col)
    missing_fill: str = "local"  # "local" | "paper" | "dark"
    colour: bool = False


CATEGORY_SPECS: dict[str, CategorySpec] = {
    spec.name: spec
    for spec in (
        CategorySpec("brick", "brick", "grey brick wall texture, skimage.data.brick()", False, 0.5, 3.0),
        CategorySpec("grass", "grass", "grey grass texture, skimage.data.grass()", False, 0.5, 180.0),
        CategorySpec("gravel", "gravel", "grey gravel texture, skimage.data.gravel()", False, 0.5, 180.0),
        CategorySpec(
            "print",
            "page",
            "scanned printed book page, skimage.data.page()",
            False,
            0.75,
            1.0,
            missing_fill="paper",
        ),
        CategorySpec(
            "coins",
            "coins",
            "aligned tray of 24 coins, skimage.data.coins()",
            True,
            0.92,
            1.5,
            center=(151.0, 192.0),
            jitter=0.01,
            missing_fill="dark",
        ),
        CategorySpec(
            "cup",
            "coffee",
            "aligned espresso cup on a saucer, skimage.data.coffee()",
            True,
            0.93,
            1.5,
            center=(200.0, 280.0),
            jitter=0.01,
            roi=((228.0, 278.0, 150.0, 190.0), (130.0, 290.0, 105.0, 112.0)),
            colour=True,
        ),
    )
}
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_SPECS)

# Sources that may donate a foreign patch for "contamination".
DONORS: tuple[str, ...] = ("brick", "grass", "gravel", "print")

DEFECT_KINDS: tuple[str, ...] = ("scratch", "crack", "stain", "hole", "missing", "contamination")

# Accepted mask area per defect, as a fraction of the image area (checked when a defect is made).
DEFECT_AREA_BOUNDS: dict[str, tuple[float, float]] = {
    "scratch": (0.001, 0.02),
    "crack": (0.0015, 0.03),
    "stain": (0.003, 0.06),
    "hole": (0.002, 0.04),
    "missing": (0.003, 0.06),
    "contamination": (0.002, 0.05),
}


def _category_key(name: str) -> int:
    return zlib.crc32(name.encode())


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]))


SPLIT_KEYS = {"train": 1, "test_normal": 2, "test_anomaly": 3}


# --------------------------------------------------------------------------------------------
# Sources and views


@functools.cache
def _source(name: str) -> np.ndarray:
    """The bundled image as float32 (H, W, C) in [0, 1]; C is 1 for grey sources, 3 for colour."""
    import skimage.data

    img = getattr(skimage.data, name)()
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[:, :, None]
    img = img[:, :, :3].astype(np.float32) / 255.0
    return np.ascontiguousarray(img)


@functools.cache
def _source_coeffs(name: str, src_per_out: float) -> tuple[np.ndarray, ...]:
    """Cubic-spline coefficients per channel, low-passed first when the view shrinks the source."""
    img = _source(name)
    out = []
    for c in range(img.shape[2]):
        ch = img[:, :, c]
        if src_per_out > 1.0:
            ch = ndi.gaussian_filter(ch, sigma=0.5 * math.sqrt(src_per_out**2 - 1.0), mode="reflect")
        out.append(ndi.spline_filter(ch, order=3, mode="mirror").astype(np.float32))
    return tuple(out)


@dataclass(frozen=True)
class ViewParams:
    center: tuple[float, float]  # (row, col) in source pixels
    angle: float  # degrees
    gain: float
    bias: float
    contrast: float
    gradient: tuple[float, float]  # illumination gradient: relative amplitude, direction (radians)
    white_balance: tuple[float, float, float]
    noise_seed: int


def _crop_px(spec: CategorySpec) -> float:
    h, w = _source(spec.source).shape[:2]
    return spec.crop * min(h, w)


def _half_extent(crop: float, angle_deg: float) -> float:
    a = math.radians(angle_deg)
    return 0.5 * crop * (abs(math.cos(a)) + abs(math.sin(a))) + 3.0


def _draw_view_params(spec: CategorySpec, rng: np.random.Generator) -> ViewParams:
    h, w = _source(spec.source).shape[:2]
    crop = _crop_px(spec)
    angle = float(rng.uniform(-spec.max_rotation, spec.max_rotation))
    e = _half_extent(crop, angle)
    if spec.aligned:
        assert spec.center is not None
        d = np.clip(
            rng.normal(0.0, spec.jitter * crop, size=2), -2.5 * spec.jitter * crop, 2.5 * spec.jitter * crop
        )
        cy, cx = spec.center[0] + d[0], spec.center[1] + d[1]
    else:
        cy, cx = rng.uniform(e, h - 1 - e), rng.uniform(e, w - 1 - e)
    cy = float(np.clip(cy, e, h - 1 - e)) if h - 1 - e > e else (h - 1) / 2
    cx = float(np.clip(cx, e, w - 1 - e)) if w - 1 - e > e else (w - 1) / 2
    wb = (1.0, 1.0, 1.0)
    if spec.colour:
        wb = tuple(float(v) for v in rng.uniform(0.985, 1.015, size=3))
    return ViewParams(
        center=(cy, cx),
        angle=angle,
        gain=float(rng.uniform(0.95, 1.05)),
        bias=float(rng.uniform(-0.025, 0.025)),
        contrast=float(rng.uniform(0.94, 1.06)),
        gradient=(float(rng.uniform(0.0, 0.03)), float(rng.uniform(0, 2 * math.pi))),
        white_balance=wb,  # type: ignore[arg-type]
        noise_seed=int(rng.integers(0, 2**31 - 1)),
    )


def _too_close(a: ViewParams, b: ViewParams) -> bool:
    return (
        abs(a.center[0] - b.center[0]) < 1.0
        and abs(a.center[1] - b.center[1]) < 1.0
        and abs(a.angle - b.angle) < 0.25
    )


# Test views are redrawn while they come within a pixel (and a quarter degree) of any training view,
# so no test crop repeats a train crop. A generous fixed pool of training views covers any n_train.
_TRAIN_POOL = 512


def _draw(category: str, split: str, index: int, attempt: int, seed: int) -> ViewParams:
    rng = _rng(seed, _category_key(category), SPLIT_KEYS[split], index, attempt)
    return _draw_view_params(CATEGORY_SPECS[category], rng)


@functools.cache
def _train_pool(category: str, seed: int) -> tuple[ViewParams, ...]:
    return tuple(_draw(category, "train", i, 0, seed) for i in range(_TRAIN_POOL))


def view_params(category: str, split: str, index: int, seed: int) -> ViewParams:
    """Parameters of one view; independent of how many images the other splits have."""
    if split == "train":
        return (
            _train_pool(category, seed)[index]
            if index < _TRAIN_POOL
            else _draw(category, split, index, 0, seed)
        )
    attempt = 0
    while True:
        p = _draw(category, split, index, attempt, seed)
        if not any(_too_close(p, q) for q in _train_pool(category, seed)):
            return p
        attempt += 1


def _view_coords(spec: CategorySpec, p: ViewParams, size: int) -> np.ndarray:
    crop = _crop_px(spec)
    s = crop / size
    a = math.radians(p.angle)
    ca, sa = math.cos(a), math.sin(a)
    o = (size - 1) / 2.0
    r, c = np.mgrid[0:size, 0:size].astype(np.float32)
    r -= o
    c -= o
    rr = p.center[0] + s * (ca * r - sa * c)
    cc = p.center[1] + s * (sa * r + ca * c)
    return np.stack([rr, cc])


def _render_roi(spec: CategorySpec, coords: np.ndarray, shrink: float = 1.0) -> np.ndarray | None:
    if not spec.roi:
        return None
    roi = np.zeros(coords.shape[1:], dtype=bool)
    for cy, cx, ry, rx in spec.roi:
        roi |= ((coords[0] - cy) / (ry * shrink)) ** 2 + ((coords[1] - cx) / (rx * shrink)) ** 2 <= 1.0
    return roi


def clean_view(category: str, params: ViewParams, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The defect-free view (float32 (size, size, 3) in [0, 1], no sensor noise yet) and the region
    where defects may be placed (None = anywhere)."""
    spec = CATEGORY_SPECS[category]
    crop = _crop_px(spec)
    coeffs = _source_coeffs(spec.source, round(crop / size, 4))
    coords = _view_coords(spec, params, size)
    chans = [
        ndi.map_coordinates(cf, coords, order=3, mode="mirror", prefilter=False, output=np.float32)
        for cf in coeffs
    ]
    img = np.stack(chans, axis=-1)
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    # photometric jitter: contrast around the mean, gain, bias, a gentle illumination gradient
    mean = float(img.mean())
    img = (img - mean) * params.contrast + mean
    amp, direction = params.gradient
    o = (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    grad = 1.0 + amp * ((yy - o) * math.sin(direction) + (xx - o) * math.cos(direction)) / o
    img = img * (params.gain * grad)[:, :, None] + params.bias
    img = img * np.asarray(params.white_balance, dtype=np.float32)
    img = np.clip(img, 0.0, 1.0).astype(np.float32)
    return img, _render_roi(spec, coords, shrink=0.93)


def _finish(img: np.ndarray, params: ViewParams, grey: bool) -> np.ndarray:
    """Sensor noise (the same field for a view with or without its defects) and 8-bit quantisation."""
    rng = _rng(params.noise_seed, 7)
    size = img.shape[0]
    if grey:
        noise = np.repeat(rng.normal(0.0, NOISE_SIGMA, size=(size, size, 1)).astype(np.float32), 3, axis=2)
    else:
        noise = rng.normal(0.0, NOISE_SIGMA, size=img.shape).astype(np.float32)
    return np.clip(np.rint((img + noise) * 255.0), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Geometry helpers


def _lum(img: np.ndarray) -> np.ndarray:
    return img @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Band-limited noise in about [-1, 1] with features of about `scale` pixels."""
    n = rng.normal(size=shape).astype(np.float32)
    n = ndi.gaussian_filter(n, sigma=max(scale, 0.5), mode="wrap")
    sd = float(n.std()) or 1.0
    return np.clip(n / (2.0 * sd), -1.0, 1.0)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _blob_from(size, center, radius, aspect, angle, roughness, harm):
    """Like _blob_distance, with fixed harmonics (so the same shape can be tried at several spots)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dy, dx = yy - center[0], xx - center[1]
    ca, sa = math.cos(angle), math.sin(angle)
    u = ca * dx + sa * dy
    v = (-sa * dx + ca * dy) * aspect
    rho = np.hypot(u, v)
    phi = np.arctan2(v, u)
    r = np.ones_like(rho)
    for i, (a, ph) in enumerate(harm):
        kk = i + 2
        r += (roughness / kk) * a * np.cos(kk * phi + ph)
    r = radius * np.clip(r, 0.55, 1.6)
    return (rho - r) / max(1.0, math.sqrt(aspect))


def _blob_distance(
    size: int,
    center: tuple[float, float],
    radius: float,
    aspect: float,
    angle: float,
    rng: np.random.Generator,
    roughness: float,
    harmonics: int = 6,
) -> np.ndarray:
    """Approximate signed distance (pixels, negative inside) to an irregular blob."""
    harm = [(rng.normal(), rng.uniform(0, 2 * math.pi)) for _ in range(harmonics)]
    return _blob_from(size, center, radius, aspect, angle, roughness, harm)


def _coverage(inside_distance: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage from a signed distance (negative inside)."""
    return np.clip(0.5 - inside_distance, 0.0, 1.0).astype(np.float32)


_SS = 3  # supersampling for strokes


def _stroke_alpha(points: np.ndarray, half_widths: np.ndarray, size: int) -> np.ndarray:
    """Coverage (0..1) of a stroke of varying width along densely sampled points (row, col)."""
    alpha = np.zeros((size, size), dtype=np.float32)
    pad = float(half_widths.max()) + 2.0
    r0 = int(max(0, math.floor(points[:, 0].min() - pad)))
    r1 = int(min(size, math.ceil(points[:, 0].max() + pad) + 1))
    c0 = int(max(0, math.floor(points[:, 1].min() - pad)))
    c1 = int(min(size, math.ceil(points[:, 1].max() + pad) + 1))
    if r1 <= r0 or c1 <= c0:
        return alpha
    hs, ws = (r1 - r0) * _SS, (c1 - c0) * _SS
    ir = np.rint((points[:, 0] - r0 + 0.5) * _SS - 0.5).astype(int)
    ic = np.rint((points[:, 1] - c0 + 0.5) * _SS - 0.5).astype(int)
    ok = (ir >= 0) & (ir < hs) & (ic >= 0) & (ic < ws)
    if not ok.any():
        return alpha
    ir, ic, hw = ir[ok], ic[ok], half_widths[ok]
    hwmap = np.zeros((hs, ws), dtype=np.float32)
    np.maximum.at(hwmap, (ir, ic), hw.astype(np.float32))
    seeds = hwmap > 0
    dist, (nr, nc) = ndi.distance_transform_edt(~seeds, return_indices=True)
    sub = (dist / _SS) <= hwmap[nr, nc]
    cov = sub.reshape(r1 - r0, _SS, c1 - c0, _SS).mean(axis=(1, 3)).astype(np.float32)
    alpha[r0:r1, c0:c1] = cov
    return alpha


def _densify(poly: np.ndarray, step: float = 1.0 / (2 * _SS)) -> tuple[np.ndarray, np.ndarray]:
    """Points every `step` px along a polyline, and each point's position t in [0, 1]."""
    seg = np.diff(poly, axis=0)
    lens = np.hypot(seg[:, 0], seg[:, 1])
    total = float(lens.sum()) or 1.0
    cum = np.concatenate([[0.0], np.cumsum(lens)])
    ts = np.arange(0.0, total + step, step)
    ts = np.clip(ts, 0, total)
    r = np.interp(ts, cum, poly[:, 0])
    c = np.interp(ts, cum, poly[:, 1])
    return np.stack([r, c], axis=1), ts / total


def _pick_point(
    rng: np.random.Generator,
    size: int,
    roi: np.ndarray | None,
    margin: float,
    avoid: np.ndarray | None = None,
) -> tuple[float, float]:
    """A random point inside the placement region, `margin` px from the border, off `avoid`."""
    lo, hi = margin, size - 1 - margin
    for _ in range(200):
        y, x = rng.uniform(lo, hi), rng.uniform(lo, hi)
        iy, ix = round(y), round(x)
        if roi is not None and not roi[iy, ix]:
            continue
        if avoid is not None and avoid[iy, ix]:
            continue
        return float(y), float(x)
    return float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi))


@dataclass
class DefectContext:
    category: str
    size: int
    roi: np.ndarray | None
    avoid: np.ndarray | None  # pixels already taken by an earlier defect


def _target_area(rng: np.random.Generator, size: int, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi)))) * size * size


def _px(size: int) -> float:
    """Pixels per 'reference pixel' (the defect sizes are designed at 256x256)."""
    return size / 256.0


# --------------------------------------------------------------------------------------------
# Defects. Each takes a float32 RGB image and returns (new image, strength) where strength in [0, 1]
# marks where the defect is; the caller thresholds it into the mask.


def _curve(
    rng: np.random.Generator,
    start: tuple[float, float],
    theta: float,
    length: float,
    bow: float,
    wobble: float,
) -> np.ndarray:
    n = max(8, int(length / 2))
    t = np.linspace(0.0, 1.0, n)
    d = np.array([math.sin(theta), math.cos(theta)])
    nrm = np.array([d[1], -d[0]])
    off = bow * np.sin(math.pi * t) + wobble * np.interp(t, np.linspace(0, 1, 6), rng.normal(size=6))
    pts = np.asarray(start)[None, :] + (length * t)[:, None] * d[None, :] + off[:, None] * nrm[None, :]
    return pts


def _defect_scratch(img, rng, ctx):
    size = ctx.size
    k = _px(size)
    width = max(1.0, rng.uniform(1.0, 3.0) * k)
    for _ in range(50):  # the whole scratch inside the image (a clipped one would run along the border)
        length = rng.uniform(0.22, 0.7) * size
        theta = rng.uniform(0, 2 * math.pi)
        cy, cx = _pick_point(rng, size, ctx.roi, 0.08 * size, ctx.avoid)
        start = (cy - 0.5 * length * math.sin(theta), cx - 0.5 * length * math.cos(theta))
        pts = _curve(rng, start, theta, length, bow=rng.uniform(-0.15, 0.15) * length, wobble=0.6 * k)
        if pts.min() >= 3 and pts.max() <= size - 4:
            break
    dense, t = _densify(pts)
    taper = np.clip(np.sin(math.pi * t) ** 0.35, 0.0, 1.0)
    hw = 0.5 * np.maximum(1.0, width * taper)
    alpha = _stroke_alpha(dense, hw, size)
    # intensity varies along the scratch (it catches the light unevenly)
    strength = alpha * (0.7 + 0.3 * _smooth_noise(rng, (size, size), 6 * k))
    local = float(_lum(img)[alpha > 0.3].mean()) if (alpha > 0.3).any() else 0.5
    bright = rng.random() < 0.5 if 0.3 < local < 0.7 else local <= 0.3
    s = strength[:, :, None]
    if bright:
        amt = rng.uniform(0.45, 0.8)
        out = img + s * amt * (1.0 - img)
    else:
        amt = rng.uniform(0.4, 0.7)
        out = img * (1.0 - s * amt)
    return out, alpha


def _jagged_path(rng, start, theta, length, step, jag):
    pts = [np.asarray(start, dtype=np.float64)]
    base = theta
    travelled = 0.0
    while travelled < length:
        base += rng.normal(0.0, 0.06)
        d = base + rng.normal(0.0, jag)
        seg = rng.uniform(0.5, 1.5) * step
        pts.append(pts[-1] + seg * np.array([math.sin(d), math.cos(d)]))
        travelled += seg
    return np.asarray(pts)


def _defect_crack(img, rng, ctx):
    size = ctx.size
    k = _px(size)
    length = rng.uniform(0.2, 0.55) * size
    w0 = max(1.2, rng.uniform(1.5, 3.2) * k)
    theta = rng.uniform(0, 2 * math.pi)
    cy, cx = _pick_point(rng, size, ctx.roi, 0.1 * size, ctx.avoid)
    start = (cy - 0.5 * length * math.sin(theta), cx - 0.5 * length * math.cos(theta))
    step = max(2.0, 5.0 * k)
    main = _jagged_path(rng, start, theta, length, step, jag=0.3)
    dense, t = _densify(main)
    hw_main = 0.5 * np.maximum(1.0, w0 * (0.3 + 0.7 * np.sin(math.pi * np.clip(t, 0, 1)) ** 0.6))
    pts_all, hw_all = [dense], [hw_main]
    for _ in range(int(rng.integers(1, 4))):
        j = int(rng.integers(len(main) // 5, max(len(main) // 5 + 1, 4 * len(main) // 5)))
        j = min(j, len(main) - 2)
        d = main[min(j + 1, len(main) - 1)] - main[j]
        ang = math.atan2(d[0], d[1]) + rng.choice([-1, 1]) * rng.uniform(0.35, 1.0)
        bl = rng.uniform(0.15, 0.45) * length
        br = _jagged_path(rng, main[j], ang, bl, step * 0.8, jag=0.35)
        bd, bt = _densify(br)
        w_here = float(np.interp(j / max(1, len(main) - 1), t, hw_main)) * 2
        hw_b = 0.5 * np.maximum(1.0, w_here * 0.8 * (1.0 - 0.75 * bt))
        pts_all.append(bd)
        hw_all.append(hw_b)
    pts = np.concatenate(pts_all)
    hw = np.concatenate(hw_all)
    keep = (pts[:, 0] > 1) & (pts[:, 0] < size - 2) & (pts[:, 1] > 1) & (pts[:, 1] < size - 2)
    alpha = _stroke_alpha(pts[keep], hw[keep], size)
    depth = rng.uniform(0.6, 0.85)
    var = 0.85 + 0.15 * _smooth_noise(rng, (size, size), 4 * k)
    out = img * (1.0 - (alpha * depth * var)[:, :, None])
    return out, alpha


_STAIN_TINTS = {
    "dark": (0.74, 0.74, 0.74),
    "rust": (0.92, 0.7, 0.5),
    "oil": (0.72, 0.7, 0.62),
    "water": (0.82, 0.83, 0.86),
}


def _defect_stain(img, rng, ctx):
    size = ctx.size
    k = _px(size)
    area = _target_area(rng, size, 0.006, 0.035)
    aspect = rng.uniform(1.0, 1.8)
    radius = math.sqrt(area * aspect / math.pi)
    cy, cx = _pick_point(rng, size, ctx.roi, radius * 0.8 + 2, ctx.avoid)
    d = _blob_distance(size, (cy, cx), radius, aspect, rng.uniform(0, math.pi), rng, roughness=0.35)
    soft = float(np.clip(0.3 * radius, 1.5, 6.0 * k))
    s = _smoothstep(-d / soft)
    s = s * (0.8 + 0.2 * _smooth_noise(rng, (size, size), 0.25 * radius))
    kind = rng.choice(["dark", "rust", "oil", "water", "bleach"])
    # a drying ring: a little more pigment at the edge
    ring = np.exp(-(((d + 0.35 * soft) / max(0.8, 0.25 * soft)) ** 2)) * (d < 0.5 * soft)
    ring = ring * rng.uniform(0.0, 0.6)
    st = np.clip(s + ring * (s > 0), 0.0, 1.0)[:, :, None]
    contrast = rng.uniform(0.8, 1.25)
    if kind == "bleach":
        out = img + st * contrast * 0.4 * (1.0 - img)
    else:
        tint = 1.0 - (1.0 - np.asarray(_STAIN_TINTS[str(kind)], dtype=np.float32)) * contrast * 1.3
        out = img * (1.0 - st * (1.0 - tint))
    return out, s


def _defect_hole(img, rng, ctx):
    size = ctx.size
    k = _px(size)
    area = _target_area(rng, size, 0.0015, 0.018)
    aspect = rng.uniform(1.0, 1.5)
    radius = math.sqrt(area * aspect / math.pi)
    cy, cx = _pick_point(rng, size, ctx.roi, radius + 4, ctx.avoid)
    angle = rng.uniform(0, math.pi)
    d = _blob_distance(size, (cy, cx), radius, aspect, angle, rng, roughness=0.08, harmonics=4)
    inside = _coverage(d)
    light = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    phi = np.arctan2(yy - cy, xx - cx)
    facing = np.cos(phi - light)  # +1 on the side towards the light
    # inside: nearly black; the inner wall on the far side from the light catches some light
    dark = img * rng.uniform(0.05, 0.15)
    wall_w = max(1.5, 0.4 * radius)
    wall = (np.clip(-facing, 0.0, 1.0) ** 0.7) * np.clip(1.0 + d / wall_w, 0.0, 1.0)
    wall_col = img * rng.uniform(0.35, 0.55)
    hole_col = dark + (wall_col - dark) * wall[:, :, None]
    # rim: a raised burr just outside the edge, lit towards the light and shaded away from it
    rim_w = max(1.0, rng.uniform(1.0, 2.2) * k)
    rim = np.clip(1.0 - np.abs(d - 0.5 * rim_w) / rim_w, 0.0, 1.0) * (d > -0.5)
    rim_delta = (rim * facing * rng.uniform(0.2, 0.35))[:, :, None]
    out = img + np.where(rim_delta > 0, rim_delta * (1.0 - img), rim_delta * img)
    out = out * (1.0 - inside[:, :, None]) + hole_col * inside[:, :, None]
    strength = np.maximum(inside, np.clip(rim * 2.0, 0.0, 1.0))
    return out, strength


def _missing_fill(img: np.ndarray, region: np.ndarray, mode: str, rng: np.random.Generator) -> np.ndarray:
    """Flat colour of what is left where material is missing."""
    near = ndi.binary_dilation(region, iterations=max(3, img.shape[0] // 16)) & ~region
    src = img[near] if near.any() else img.reshape(-1, 3)
    sl = _lum(src)
    if mode == "dark":  # what the object lies on (the cloth under the coins): the dark part around
        lo, hi = np.quantile(sl, [0.05, 0.3])
        return src[(sl >= lo) & (sl <= hi)].mean(axis=0)
    if mode == "paper":  # blank paper: the bright part of the surroundings, without ink
        lo, hi = np.quantile(sl, [0.45, 0.85])
        return src[(sl >= lo) & (sl <= hi)].mean(axis=0)
    # worn-away material exposing what is under it: darker or lighter than the surface around
    factor = rng.uniform(0.7, 0.85) if rng.random() < 0.6 else rng.uniform(1.12, 1.25)
    return np.clip(src.mean(axis=0) * factor, 0.0, 1.0)


def _defect_missing(img, rng, ctx):
    size = ctx.size
    k = _px(size)
    spec = CATEGORY_SPECS[ctx.category]
    area = _target_area(rng, size, 0.005, 0.035)
    aspect = rng.uniform(1.0, 2.2)
    radius = math.sqrt(area * aspect / math.pi)
    angle = rng.uniform(0, math.pi)
    roughness = 0.5
    harm = [(rng.normal(), rng.uniform(0, 2 * math.pi)) for _ in range(9)]

    def shape(center):
        return _blob_from(size, center, radius, aspect, angle, roughness, harm)

    # prefer the spot where the fill differs most from what is there (on print: over ink)
    best, best_score = None, -1.0
    for _ in range(8):
        p = _pick_point(rng, size, ctx.roi, radius + 3, ctx.avoid)
        region = shape(p) <= 0
        col = _missing_fill(img, region, spec.missing_fill, np.random.default_rng(1))
        sc = float(np.abs(img[region] - col).max(axis=1).mean()) if region.any() else 0.0
        if sc > best_score:
            best, best_score = p, sc
    assert best is not None
    d = shape(best) + 1.0 * k * _smooth_noise(rng, (size, size), 1.0 * k)  # jagged broken edge
    inside = _coverage(d)
    region = inside >= 0.5
    col = _missing_fill(img, region, spec.missing_fill, rng).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    ga = rng.uniform(0, 2 * math.pi)
    shade = 1.0 + 0.04 * ((yy - best[0]) * math.sin(ga) + (xx - best[1]) * math.cos(ga)) / max(radius, 1.0)
    grain = 1.0 + 0.015 * _smooth_noise(rng, (size, size), 3 * k)
    fill = np.clip(col[None, None, :] * (shade * grain)[:, :, None], 0.0, 1.0)
    # the broken edge casts a thin shadow on one side (not on print: nothing is raised there)
    edge = np.zeros_like(d)
    if spec.missing_fill != "paper":
        side = np.cos(np.arctan2(yy - best[0], xx - best[1]) - ga) > 0
        edge = np.clip(1.0 - np.abs(d + 0.5) / 1.2, 0.0, 1.0) * side * rng.uniform(0.2, 0.4)
    out = img * (1.0 - edge[:, :, None])
    out = out * (1.0 - inside[:, :, None]) + fill * inside[:, :, None]
    return out, np.maximum(inside, (edge > 0.08).astype(np.float32))


def _defect_contamination(img, rng, ctx):
    size = ctx.size
    k = _px(size)
    donors = [c for c in DONORS if c != ctx.category]
    donor = CATEGORY_SPECS[str(rng.choice(donors))]
    area = _target_area(rng, size, 0.002, 0.025)
    aspect = rng.uniform(1.0, 2.0)
    radius = math.sqrt(area * aspect / math.pi)
    cy, cx = _pick_point(rng, size, ctx.roi, radius + 3, ctx.avoid)
    d = _blob_distance(
        size, (cy, cx), radius, aspect, rng.uniform(0, math.pi), rng, roughness=0.45, harmonics=7
    )
    inside = _coverage(d)
    # the foreign material: a patch of the donor texture at roughly its native scale, any rotation
    src = _source(donor.source)
    h, w = src.shape[:2]
    scale = (_crop_px(donor) / size) * rng.uniform(0.85, 1.15)  # donor pixels per image pixel
    a = rng.uniform(0, 2 * math.pi)
    ext = (radius * 1.8 + 4) * scale
    sy, sx = rng.uniform(ext, h - 1 - ext), rng.uniform(ext, w - 1 - ext)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dy, dx = (yy - cy) * scale, (xx - cx) * scale
    coords = np.stack([sy + math.cos(a) * dy - math.sin(a) * dx, sx + math.sin(a) * dy + math.cos(a) * dx])
    patch = np.stack(
        [ndi.map_coordinates(src[:, :, c], coords, order=1, mode="mirror") for c in range(src.shape[2])],
        axis=-1,
    ).astype(np.float32)
    if patch.shape[2] == 1:
        patch = np.repeat(patch, 3, axis=2)
    patch = np.clip(patch * rng.uniform(0.85, 1.15), 0, 1)
    # a faint contact shadow on the side away from the light
    la = rng.uniform(0, 2 * math.pi)
    off = 1.5 * max(1.0, k)
    shifted = ndi.shift(inside, (off * math.sin(la), off * math.cos(la)), order=1, mode="constant")
    shadow = np.clip(shifted - inside, 0.0, 1.0) * rng.uniform(0.2, 0.35)
    out = img * (1.0 - shadow[:, :, None])
    out = out * (1.0 - inside[:, :, None]) + patch * inside[:, :, None]
    return out, np.maximum(inside, (shadow > 0.08).astype(np.float32))


_DEFECTS = {
    "scratch": _defect_scratch,
    "crack": _defect_crack,
    "stain": _defect_stain,
    "hole": _defect_hole,
    "missing": _defect_missing,
    "contamination": _defect_contamination,
}

_MASK_THRESHOLD = {"stain": 0.3}


def _defect_blur(category: str, size: int) -> float:
    """Blur for the painted defect so it is no sharper than the (possibly upsampled) view."""
    up = size / _crop_px(CATEGORY_SPECS[category])
    return float(min(0.8, 0.45 * max(0.0, up - 1.0)))


# A pixel "matters" when the defect changes some channel by more than this (about 8 grey levels).
SIGNIFICANT_CHANGE = 0.03


def apply_defect(
    img: np.ndarray,
    kind: str,
    rng: np.random.Generator,
    category: str,
    roi: np.ndarray | None = None,
    avoid: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One defect of `kind` on a float32 RGB image in [0, 1]: (new image, boolean mask).

    The mask is the defect's footprint restricted to where it visibly changed the image (parts of a
    footprint that happen to look the same as before, e.g. a dark fill over a dark background, are
    left out unless they are enclosed by or within a few pixels of a visible change). Pixels changed
    outside the mask lie within a couple of pixels of it. The mask area is within
    DEFECT_AREA_BOUNDS[kind]; the defect is redrawn until it is.
    """
    size = img.shape[0]
    lo, hi = DEFECT_AREA_BOUNDS[kind]
    ctx = DefectContext(category, size, roi, avoid)
    blur = _defect_blur(category, size)
    reach = max(2, round(3 * _px(size)))
    for _ in range(60):
        out, strength = _DEFECTS[kind](img, rng, ctx)
        out = np.clip(out, 0.0, 1.0).astype(np.float32)
        if blur > 0:
            delta = ndi.gaussian_filter(out - img, sigma=(blur, blur, 0), truncate=2.0)
            out = np.clip(img + delta, 0.0, 1.0).astype(np.float32)
        footprint = strength >= _MASK_THRESHOLD.get(kind, 0.4)
        visible = np.abs(out - img).max(axis=2) > SIGNIFICANT_CHANGE
        near = ndi.binary_fill_holes(ndi.binary_dilation(visible, iterations=reach))
        mask = footprint & near
        frac = mask.mean()
        if lo <= frac <= hi and (avoid is None or not (footprint & avoid).any()):
            return out, mask
    raise RuntimeError(f"could not place a {kind} defect within its area bounds on {category}")


# --------------------------------------------------------------------------------------------
# Samples


@dataclass
class Sample:
    """One generated image. For anomalous samples `clean` is the same view (same noise) without the
    defects, so `image != clean` only where the defects changed pixels."""

    category: str
    split: str  # "train" | "test_normal" | "test_anomaly"
    index: int
    image: np.ndarray  # uint8 (size, size, 3)
    clean: np.ndarray  # uint8 (size, size, 3)
    mask: np.ndarray | None  # uint8 (size, size) 0/255 for anomalous samples
    defects: list[dict] = field(default_factory=list)  # [{"kind": ..., "area": fraction}]


def _kind_for(category: str, index: int, seed: int) -> str:
    """Defect kinds cycle through shuffled blocks of all kinds, so every kind appears about equally."""
    block, pos = divmod(index, len(DEFECT_KINDS))
    order = _rng(seed, _category_key(category), 99, block).permutation(len(DEFECT_KINDS))
    return DEFECT_KINDS[int(order[pos])]


def make_sample(category: str, split: str, index: int, *, size: int = 256, seed: int = 0) -> Sample:
    spec = CATEGORY_SPECS[category]
    params = view_params(category, split, index, seed)
    img, roi = clean_view(category, params, size)
    grey = not spec.colour
    clean = _finish(img, params, grey)
    if split != "test_anomaly":
        return Sample(category, split, index, clean, clean, None)
    rng = _rng(seed, _category_key(category), 1000 + index)
    kinds = [_kind_for(category, index, seed)]
    if rng.random() < 0.2:
        kinds.append(DEFECT_KINDS[int(rng.integers(len(DEFECT_KINDS)))])
    mask = np.zeros((size, size), dtype=bool)
    defects = []
    out = img
    for kind in kinds:
        avoid = ndi.binary_dilation(mask, iterations=max(2, size // 32)) if mask.any() else None
        out, m = apply_defect(out, kind, rng, category, roi=roi, avoid=avoid)
        defects.append({"kind": kind, "area": round(float(m.mean()), 5)})
        mask |= m
    image = _finish(out, params, grey)
    return Sample(category, split, index, image, clean, (mask * 255).astype(np.uint8), defects)


# --------------------------------------------------------------------------------------------
# Writing


def _save_png(arr: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def _manifest_line(image: Path, label: int, mask: Path | None) -> str:
    doc: dict = {
        "source-ref": image.resolve().as_uri(),
        "anomaly-label": label,
        "anomaly-label-metadata": {
            "class-name": "anomaly" if label else "normal",
            "human-annotated": "yes",
            "type": "groundtruth/image-classification",
            "job-name": JOB_NAME,
            "creation-date": CREATION_DATE,
        },
    }
    if mask is not None:
        doc["anomaly-mask-ref"] = mask.resolve().as_uri()
    return json.dumps(doc, separators=(", ", ": "))


def _write_text(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def generate(
    root: Path,
    *,
    categories=CATEGORIES,
    size: int = 256,
    n_train: int = 30,
    n_test_normal: int = 20,
    n_test_anomalous: int = 20,
    seed: int = 0,
    preview: bool = False,
) -> dict:
    """Write the benchmark under `root` (see the module docstring) and return a summary per category."""
    root = Path(root)
    unknown = [c for c in categories if c not in CATEGORY_SPECS]
    if unknown:
        raise ValueError(f"unknown categories {unknown}; known: {list(CATEGORIES)}")
    summary: dict = {"root": str(root.resolve()), "size": size, "seed": seed, "categories": {}}
    for category in categories:
        cdir = root / category
        train_lines, test_lines, defects_doc = [], [], {}
        counts = {k: 0 for k in DEFECT_KINDS}
        for split, n, sub in (
            ("train", n_train, "train/normal"),
            ("test_normal", n_test_normal, "test/normal"),
            ("test_anomaly", n_test_anomalous, "test/anomaly"),
        ):
            for i in range(n):
                s = make_sample(category, split, i, size=size, seed=seed)
                path = cdir / sub / f"{i:03d}.png"
                _save_png(s.image, path)
                if split == "train":
                    train_lines.append(_manifest_line(path, 0, None))
                elif split == "test_normal":
                    test_lines.append(_manifest_line(path, 0, None))
                else:
                    assert s.mask is not None
                    mpath = cdir / "test" / "mask" / path.name
                    _save_png(s.mask, mpath)
                    test_lines.append(_manifest_line(path, 1, mpath))
                    defects_doc[path.name] = s.defects
                    for d in s.defects:
                        counts[d["kind"]] += 1
        cdir.mkdir(parents=True, exist_ok=True)
        _write_text(cdir / "train.manifest", train_lines)
        _write_text(cdir / "test.manifest", test_lines)
        (cdir / "defects.json").write_text(json.dumps(defects_doc, indent=1, sort_keys=True) + "\n")
        spec = CATEGORY_SPECS[category]
        summary["categories"][category] = {
            "source": f"skimage.data.{spec.source}()",
            "description": spec.description,
            "aligned": spec.aligned,
            "train": n_train,
            "test_normal": n_test_normal,
            "test_anomalous": n_test_anomalous,
            "defects": counts,
            "dir": str(cdir.resolve()),
            "train_manifest": str((cdir / "train.manifest").resolve()),
            "test_manifest": str((cdir / "test.manifest").resolve()),
        }
    if preview:
        summary["preview"] = str(write_preview(root, categories=categories, size=size, seed=seed).resolve())
    return summary


def _outline(mask: np.ndarray) -> np.ndarray:
    m = mask > 0
    return m & ~ndi.binary_erosion(m, iterations=1, border_value=0)


def write_preview(
    root: Path,
    *,
    categories=CATEGORIES,
    size: int = 256,
    seed: int = 0,
    n_normal: int = 3,
    n_anomalous: int = 4,
    thumb: int = 144,
) -> Path:
    """Contact sheet `root/preview.png`: per category a few normal test images, then anomalous ones
    (plain) and the same with their mask outlined in red."""
    root = Path(root)
    label_w = 80
    cols = n_normal + 2 * n_anomalous
    gap = 4
    sheet = Image.new("RGB", (label_w + cols * (thumb + gap), len(categories) * (thumb + gap) + 20), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((label_w, 4), "normal", fill="black")
    draw.text((label_w + n_normal * (thumb + gap), 4), "anomalous", fill="black")
    draw.text(
        (label_w + (n_normal + n_anomalous) * (thumb + gap), 4), "anomalous + mask outline", fill="black"
    )
    for r, category in enumerate(categories):
        y = 20 + r * (thumb + gap)
        draw.text((4, y + thumb // 2 - 6), category, fill="black")
        tiles = []
        for i in range(n_normal):
            tiles.append(make_sample(category, "test_normal", i, size=size, seed=seed).image)
        anomalous = [
            make_sample(category, "test_anomaly", i, size=size, seed=seed) for i in range(n_anomalous)
        ]
        tiles += [s.image for s in anomalous]
        for s in anomalous:
            im = s.image.copy()
            assert s.mask is not None
            ol = _outline(s.mask)
            im[ol] = (255, 0, 0)
            tiles.append(im)
        for c, t in enumerate(tiles):
            tile = Image.fromarray(t).resize((thumb, thumb), Image.Resampling.LANCZOS)
            sheet.paste(tile, (label_w + c * (thumb + gap), y))
    path = root / "preview.png"
    root.mkdir(parents=True, exist_ok=True)
    sheet.save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--train", type=int, default=30)
    ap.add_argument("--test-normal", type=int, default=20)
    ap.add_argument("--test-anomalous", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--categories", default=",".join(CATEGORIES), help="comma-separated subset")
    args = ap.parse_args(argv)
    cats = tuple(c for c in args.categories.split(",") if c)
    t0 = time.perf_counter()
    summary = generate(
        args.out_dir,
        categories=cats,
        size=args.size,
        n_train=args.train,
        n_test_normal=args.test_normal,
        n_test_anomalous=args.test_anomalous,
        seed=args.seed,
        preview=True,
    )
    elapsed = time.perf_counter() - t0
    header = f"{'category':<8} {'source':<24} {'train':>5} {'test-ok':>7} {'test-bad':>8}  defects"
    print(header)
    print("-" * len(header))
    for name, c in summary["categories"].items():
        kinds = " ".join(f"{k}={v}" for k, v in c["defects"].items() if v)
        print(
            f"{name:<8} {c['source']:<24} {c['train']:>5} {c['test_normal']:>7} {c['test_anomalous']:>8}  {kinds}"
        )
    print(f"\nwrote {summary['root']} ({args.size}x{args.size}, seed {args.seed}) in {elapsed:.1f} s")
    print(f"manifests: <category>/train.manifest, <category>/test.manifest; preview: {summary['preview']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
