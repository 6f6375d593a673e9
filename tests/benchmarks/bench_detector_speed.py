"""The exported detector's own time, side by side: today's default settings against others, on
the same images in one run, alternating (this machine's speed drifts by 2x over hours, so only a
side-by-side ratio means anything). Each model is fitted on the same normal images, exported, and
timed with onnxruntime on the worker's settings (2 threads, no spinning): session.run alone, and
the worker's whole detect (letterbox, run, score, mask).

Run: .venv/bin/python tests/benchmarks/bench_detector_speed.py [--images DIR] [--runs 100]
(default images: MTD's defect-free tiles if present, else generated pattern images)
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import pattern_png  # noqa: E402
from loupe_inference.runtime import ModelRuntime  # noqa: E402
from loupe_models.catalogue import model_path  # noqa: E402
from loupe_models.preprocess import decode_pixels, to_pixels  # noqa: E402
from loupe_training.patchcore.detector import Detector, DetectorConfig  # noqa: E402
from loupe_training.patchcore.export import export  # noqa: E402
from loupe_training.patchcore.features import FeatureExtractor  # noqa: E402

MTD = Path(__file__).resolve().parents[3] / "shared" / "data" / "magnetic-tile" / "MT_Free" / "Imgs"
VARIANTS = {
    "block4, 16k (before 12-06)": {"taps": ("block4",), "bank_size": 16384},
    "block4+block10, 8k (default)": {},
    "block4+block10, 4k": {"bank_size": 4096},
    "block4+block7, 8k": {"taps": ("block4", "block7")},
    "block4+block10, 8k, 320 px": {"image_size": 320},
    "block4+block10, 8k, 384 px": {"image_size": 384},
}


def samples(count: int) -> list[bytes]:
    if MTD.is_dir():
        return [p.read_bytes() for p in sorted(MTD.glob("*.jpg"))[:count]]
    return [pattern_png(i) for i in range(count)]


def fitted(config: DetectorConfig, images: list[bytes], directory: Path) -> ModelRuntime:
    detector = Detector(config, FeatureExtractor(str(model_path(config.backbone)), config.taps, config.image_size))
    loaded = [decode_pixels(data, config.image_size) for data in images]
    detector.fit(((np.stack([p for p, _ in loaded[i : i + 8]]), [q for _, q in loaded[i : i + 8]])
                  for i in range(0, len(loaded), 8)), total=len(loaded))
    detector.calibrate(detector.loo_scores, None)
    export(detector, directory)
    return ModelRuntime.load(directory, threads=2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=int, default=100)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    data = samples(args.train + 20)
    train, probe = data[: args.train], data[args.train :]
    with tempfile.TemporaryDirectory() as tmp:
        runtimes = {name: fitted(DetectorConfig(**fields), train, Path(tmp) / str(i))
                    for i, (name, fields) in enumerate(VARIANTS.items())}
        images = [Image.open(io.BytesIO(d)) for d in probe]
        for image in images:
            image.load()
        run_ms: dict[str, list[float]] = {name: [] for name in runtimes}
        detect_ms: dict[str, list[float]] = {name: [] for name in runtimes}
        for i in range(args.runs + 5):  # alternate the models so drift hits them alike
            image = images[i % len(images)]
            for name, runtime in runtimes.items():
                pixels = to_pixels(image, runtime.size)[0][None]
                t0 = time.perf_counter()
                runtime.session.run(["anomaly_map"], {"pixels": pixels})
                t1 = time.perf_counter()
                runtime.detect(image, with_mask=True)
                t2 = time.perf_counter()
                if i >= 5:
                    run_ms[name].append((t1 - t0) * 1000)
                    detect_ms[name].append((t2 - t1) * 1000)
    base = statistics.median(run_ms[next(iter(VARIANTS))])
    source = "MTD tiles" if MTD.is_dir() else "pattern images"
    print(f"{args.train} training {source}, {args.runs} alternating runs, 2 onnxruntime threads")
    for name in runtimes:
        run, whole = statistics.median(run_ms[name]), statistics.median(detect_ms[name])
        print(f"{name:30s} session.run p50 {run:6.1f} ms ({run / base:.2f}x)  whole detect p50 {whole:6.1f} ms")
    print(json.dumps({n: round(statistics.median(v), 2) for n, v in run_ms.items()}))


if __name__ == "__main__":
    main()
