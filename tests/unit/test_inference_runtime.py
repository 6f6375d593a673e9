"""The inference runtime on a real exported model: DetectAnomalyResult shape, mask size and
content, confidence in [0, 1], and the threshold as a per-call parameter."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from helpers import pattern_png
from loupe_inference.runtime import ModelRuntime
from loupe_models.catalogue import model_path
from loupe_models.preprocess import decode_pixels
from loupe_training.patchcore.detector import Detector, DetectorConfig
from loupe_training.patchcore.export import export
from loupe_training.patchcore.features import FeatureExtractor

SIZE = 128


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> ModelRuntime:
    config = DetectorConfig(image_size=SIZE, bank_size=4096, top_k=16, loo_images=12)
    detector = Detector(config, FeatureExtractor(str(model_path(config.backbone)), config.taps, SIZE))
    loaded = [decode_pixels(pattern_png(i), SIZE) for i in range(14)]
    detector.fit(((np.stack([p for p, _ in loaded[i : i + 7]]), [q for _, q in loaded[i : i + 7]])
                  for i in range(0, 14, 7)), total=14)
    detector.calibrate(detector.loo_scores, None)
    directory = tmp_path_factory.mktemp("model")
    export(detector, directory)
    return ModelRuntime.load(directory)


def image(seed: int, defect: bool = False) -> Image.Image:
    return Image.open(io.BytesIO(pattern_png(seed, defect)))


def test_normal_and_defective_images(runtime):
    normal = [runtime.detect(image(400 + i)) for i in range(6)]
    defective = [runtime.detect(image(500 + i, defect=True)) for i in range(6)]
    assert sum(not d.is_anomalous for d in normal) >= 5
    assert sum(d.is_anomalous for d in defective) >= 5
    for d in normal + defective:
        assert 0.5 <= d.confidence <= 1.0


def test_lookout_result_shape_and_mask(runtime):
    detection = runtime.detect(image(600, defect=True))
    result = detection.lookout_result()
    assert result["Source"] == {"Type": "direct"} and result["IsAnomalous"] is True
    assert result["Anomalies"][0]["Name"] == "background"
    background, anomaly = result["Anomalies"]
    assert anomaly["PixelAnomaly"]["Color"] == "#FF0000" and 0 < anomaly["PixelAnomaly"]["TotalPercentageArea"] < 0.5
    assert background["PixelAnomaly"]["TotalPercentageArea"] + anomaly["PixelAnomaly"]["TotalPercentageArea"] == pytest.approx(1, abs=1e-5)
    mask = Image.open(io.BytesIO(base64.b64decode(result["AnomalyMask"])))
    assert mask.format == "PNG" and mask.size == (160, 160)
    red = (np.asarray(mask.convert("RGB")) == [255, 0, 0]).all(-1).mean()
    assert red == pytest.approx(anomaly["PixelAnomaly"]["TotalPercentageArea"], abs=1e-6)


def test_threshold_is_a_parameter(runtime):
    img = image(700)
    base = runtime.detect(img)
    assert runtime.detect(img, threshold=base.score - 1e-3).is_anomalous
    assert not runtime.detect(img, threshold=base.score + 1e-3).is_anomalous
    quiet = runtime.detect(img, with_mask=False)
    assert "AnomalyMask" not in quiet.lookout_result()
    assert runtime.detect(image(701)).lookout_result()["Anomalies"] == [
        {"Name": "background", "PixelAnomaly": {"TotalPercentageArea": 1.0, "Color": "#FFFFFF"}}
    ] or runtime.detect(image(701)).is_anomalous


def test_a_large_flagged_image_gets_a_full_size_mask_worked_out_within_the_pixel_budget(runtime, monkeypatch):
    """Issue 19: a 4096 x 4096 image cost seconds of worker time in per-pixel numpy; the mask and
    classes are now worked out on at most WORK_PIXELS and scaled up, so the answer keeps its shape."""
    from loupe_inference.runtime import WORK_PIXELS, work_size

    assert work_size((1024, 768)) == (1024, 768)
    assert work_size((4096, 4096)) == (2048, 2048) and 2048 * 2048 <= WORK_PIXELS
    w, h = work_size((4096, 1000))
    assert w * h <= WORK_PIXELS and abs(w / h - 4.096) < 0.01
    big = image(600, defect=True).convert("RGB").resize((3000, 2800), Image.Resampling.BILINEAR)
    detection = runtime.detect(big)
    assert detection.is_anomalous
    result = detection.lookout_result()
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(result["AnomalyMask"]))).convert("RGB"))
    assert mask.shape == (2800, 3000, 3)
    colours = {tuple(c) for c in np.unique(mask.reshape(-1, 3), axis=0)}
    assert colours == {(255, 255, 255), (255, 0, 0)}
    red = (mask == [255, 0, 0]).all(-1).mean()
    assert red == pytest.approx(result["Anomalies"][1]["PixelAnomaly"]["TotalPercentageArea"], abs=2e-3)
    # Worked out at full size instead, the mask differs only along region edges.
    monkeypatch.setattr("loupe_inference.runtime.WORK_PIXELS", 10**9)
    exact = np.asarray(Image.open(io.BytesIO(base64.b64decode(runtime.detect(big).lookout_result()["AnomalyMask"]))))
    assert (exact.reshape(-1, 3) != mask.reshape(-1, 3)).any(-1).mean() < 0.01
