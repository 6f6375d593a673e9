"""Worker time for the largest images Lookout accepts (4096 x 4096), with the pixel-work bounds
(scoring.DECODE_PIXELS: a large JPEG decoded reduced; runtime.WORK_PIXELS: a flagged image's mask
and classes worked out on at most 2048 x 2048 pixels) and without them (both raised past the
image), on the same machine in the same run; and, for reference, the code before issue 19's
bounds (both raised, and the mask painted as it was: a masked assignment per class on a full-size
RGB array, saved at PNG level 6). A small PatchCore model is trained in-process on the test patterns, as the unit tests do;
the images are flagged (a defect pattern scaled up, and a flat image far from the training data),
so the mask path runs. Prints figures; asserts nothing.

Run: .venv/bin/python tests/benchmarks/bench_large_images.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import pattern_png  # noqa: E402
from loupe_inference import runtime as rt  # noqa: E402
from loupe_inference import scoring  # noqa: E402
from loupe_models.catalogue import model_path  # noqa: E402
from loupe_models.preprocess import decode_pixels  # noqa: E402
from loupe_training.patchcore.detector import Detector, DetectorConfig  # noqa: E402
from loupe_training.patchcore.export import export  # noqa: E402
from loupe_training.patchcore.features import FeatureExtractor  # noqa: E402

SIZE = 128


def small_model(directory: Path) -> rt.ModelRuntime:
    config = DetectorConfig(image_size=SIZE, bank_size=4096, top_k=16, loo_images=12)
    detector = Detector(config, FeatureExtractor(str(model_path(config.backbone)), config.taps, SIZE))
    loaded = [decode_pixels(pattern_png(i), SIZE) for i in range(14)]
    detector.fit(((np.stack([p for p, _ in loaded[i: i + 7]]), [q for _, q in loaded[i: i + 7]])
                  for i in range(0, 14, 7)), total=14)
    detector.calibrate(detector.loo_scores, None)
    export(detector, directory)
    return rt.ModelRuntime.load(directory)


def old_mask_png(classes: np.ndarray, colors: tuple[str, ...], size: tuple[int, int]) -> bytes:
    """The mask as runtime._mask_png made it before the bounds (classes are full-size there)."""
    from loupe_edge.rules import BACKGROUND, hex_rgb

    rgb = np.empty((*classes.shape, 3), np.uint8)
    rgb[:] = hex_rgb(BACKGROUND[1])
    for k, color in enumerate(colors):
        rgb[classes == k] = hex_rgb(color)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"compress_level": 6} if fmt == "PNG" else {"quality": 90}))
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        model = small_model(Path(folder))
    side = 4096
    images = {
        "defect pattern, PNG": encoded(Image.open(io.BytesIO(pattern_png(3, True))).convert("RGB")
                                       .resize((side, side)), "PNG"),
        "defect pattern, JPEG": encoded(Image.open(io.BytesIO(pattern_png(3, True))).convert("RGB")
                                        .resize((side, side)), "JPEG"),
        "flat colour, PNG": encoded(Image.new("RGB", (side, side), (30, 200, 30)), "PNG"),
    }
    bounded = rt.WORK_PIXELS, scoring.DECODE_PIXELS
    new_mask_png = rt._mask_png  # noqa: SLF001
    print(f"{side} x {side} images, flagged, mask on; median of {args.repeat} (seconds of one worker thread)")
    print(f"{'image':24} {'KB':>7} {'bounded':>9} {'unbounded':>10} {'before':>8}")
    for name, data in images.items():
        row = []
        for work_pixels, decode_pixels, paint in ((*bounded, new_mask_png), (10**9, 10**9, new_mask_png),
                                                   (10**9, 10**9, old_mask_png)):
            rt.WORK_PIXELS, scoring.DECODE_PIXELS, rt._mask_png = work_pixels, decode_pixels, paint  # noqa: SLF001
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                _, detection, _ = scoring.detect(model, data, content_type=None, threshold=None, with_mask=True)
                times.append(time.perf_counter() - started)
                assert detection.is_anomalous, name
            row.append(statistics.median(times))
        print(f"{name:24} {len(data) // 1024:7d} {row[0]:9.2f} {row[1]:10.2f} {row[2]:8.2f}")
    rt.WORK_PIXELS, scoring.DECODE_PIXELS = bounded
    rt._mask_png = new_mask_png  # noqa: SLF001


if __name__ == "__main__":
    main()
