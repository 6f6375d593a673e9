"""Detector design sweep (in-process, no services): image and pixel AUROC per category for
backbone / tap / scoring variants on the generated benchmark data, to choose defaults.

Run: .venv/bin/python tests/benchmarks/sweep_detector.py DATA_DIR '{"name": {DetectorConfig fields}}' [cats]
(DATA_DIR from: .venv/bin/python tests/benchmarks/anomaly_data.py DATA_DIR)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from loupe_models.catalogue import model_path
from loupe_models.preprocess import decode_pixels
from loupe_training.patchcore import metrics
from loupe_training.patchcore.detector import Detector, DetectorConfig
from loupe_training.patchcore.features import FeatureExtractor


def evaluate(root: Path, category: str, config: DetectorConfig) -> tuple[float, float, float]:
    train = [json.loads(line) for line in open(root / category / "train.manifest")]
    test = [json.loads(line) for line in open(root / category / "test.manifest")]
    size = config.image_size

    def load(entries: list[dict]) -> tuple[np.ndarray, list]:
        loaded = [decode_pixels(Path(e["source-ref"].removeprefix("file://")).read_bytes(), size) for e in entries]
        return np.stack([pixels for pixels, _ in loaded]), [place for _, place in loaded]

    detector = Detector(config, FeatureExtractor(str(model_path(config.backbone)), config.taps, size))
    images, places = load(train)
    started = time.perf_counter()
    detector.fit(((images[i : i + 8], places[i : i + 8]) for i in range(0, len(images), 8)), total=len(images))
    fit = time.perf_counter() - started
    test_images, test_places = load(test)
    scores, maps = detector.score(test_images, test_places)
    labels = np.array([e["anomaly-label"] for e in test])
    regions, truths = [], []
    for e, place, amap in zip(test, test_places, maps, strict=True):
        region = place.crop(amap)
        regions.append(region[::2, ::2].ravel())
        truth = (np.asarray(Image.open(e["anomaly-mask-ref"].removeprefix("file://")).convert("L").resize(
            region.shape[::-1]), np.uint8) > 127) if "anomaly-mask-ref" in e else np.zeros(region.shape, bool)
        truths.append(truth[::2, ::2].ravel())
    return metrics.auroc(scores, labels), metrics.auroc(np.concatenate(regions), np.concatenate(truths)), fit


def main() -> None:
    root = Path(sys.argv[1])
    variants = json.loads(sys.argv[2])
    categories = sys.argv[3].split(",") if len(sys.argv) > 3 else ["brick", "grass", "gravel", "print", "coins", "cup"]
    for name, fields in variants.items():
        config = DetectorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
        results = [evaluate(root, c, config) for c in categories]
        cells = " ".join(f"{c}:{i:.3f}/{p:.3f}" for c, (i, p, _) in zip(categories, results, strict=True))
        print(f"{name:14s} {cells} | mean image {np.mean([r[0] for r in results]):.3f} "
              f"pixel {np.mean([r[1] for r in results]):.3f} fit {np.mean([r[2] for r in results]):.1f} s", flush=True)


if __name__ == "__main__":
    main()
