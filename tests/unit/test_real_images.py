"""The detector on real factory images (the magnetic-tile defect set beside the checkout, as CI has
it): a floor that a regression to the old behaviour would break, not the benchmark
(tests/benchmarks/bench_mtd.py measures). Skips with the reason where the data is absent."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from loupe_inference.runtime import ModelRuntime
from loupe_training.patchcore.detector import DetectorConfig
from loupe_training.patchcore.metrics import auroc
from loupe_training.trainer import train

DATA = Path(os.environ.get("LOUPE_MTD_DIR") or Path(__file__).resolve().parents[3] / "shared" / "data" / "magnetic-tile")
KINDS = ("Blowhole", "Break", "Crack", "Fray", "Uneven")
pytestmark = pytest.mark.skipif(not (DATA / "MT_Free").is_dir(), reason=f"magnetic-tile data not found at {DATA}")


def entry(path: Path, label: int) -> dict:
    mask = path.with_suffix(".png") if label else None
    return {"blob_key": str(path), "source_ref": path.name, "label": label, "mask_key": str(mask) if mask else None}


def fetch(key: str) -> bytes:
    path = Path(key)
    if path.suffix == ".png":  # MTD marks defects with small non-zero values; training reads white on black
        grey = np.asarray(Image.open(path).convert("L")) > 0
        out = io.BytesIO()
        Image.fromarray((grey * 255).astype(np.uint8)).save(out, "PNG")
        return out.getvalue()
    return path.read_bytes()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    rng = np.random.default_rng(5)
    free = sorted((DATA / "MT_Free" / "Imgs").glob("*.jpg"))
    free = [free[i] for i in rng.permutation(len(free))]
    defective = [p for k in KINDS for p in sorted((DATA / f"MT_{k}" / "Imgs").glob("*.jpg"))]
    defective = [defective[i] for i in rng.permutation(len(defective))]
    output = train(config=DetectorConfig(), train_entries=[entry(p, 0) for p in free[:50]],
                   test_entries=[entry(p, 0) for p in free[50:70]] + [entry(p, 1) for p in defective[:10]],
                   fetch=fetch, progress=lambda message, fraction: None, title="magnetic tiles")
    directory = tmp_path_factory.mktemp("mtd-model")
    (directory / "model.onnx").write_bytes(output.model_onnx)
    (directory / "model.json").write_text(json.dumps(output.sidecar))
    held = [(p, 0) for p in free[70:100]] + [(p, 1) for p in defective[10:40]]
    return output, ModelRuntime.load(directory, threads=2), held


def test_held_out_tiles_are_ranked_and_flagged_with_masks(trained):
    output, runtime, held = trained
    result = output.evaluation_result
    assert result["ThresholdMethod"] == "f1-optimal" and result["PerformanceMethod"] == "cross-validated"
    scores, labels = [], []
    for path, label in held:
        with Image.open(path) as image:
            detection = runtime.detect(image)
            scores.append(detection.score)
            labels.append(label)
            if detection.is_anomalous:  # a flagged tile's mask marks something, at the tile's own size
                mask = detection.lookout_result()["AnomalyMask"]
                drawn = Image.open(io.BytesIO(base64.b64decode(mask)))
                assert drawn.size == image.size
                assert (np.asarray(drawn.convert("RGB")) == [255, 0, 0]).all(-1).any()
    # The squashed, block-4 detector ranked held-out tiles at 0.70 with 20 and 0.83 with 100
    # training tiles; this one at 0.75 and 0.87 (docs/benchmarks.md). 50 tiles here.
    assert auroc(np.array(scores), np.array(labels)) >= 0.72
    flagged = np.array(scores) >= runtime.threshold
    assert flagged[np.array(labels) == 1].mean() >= 0.3  # the old threshold caught one defect in six
