"""The model format's rules (loupe_models.anomaly_model) and the letterbox preprocessing they read."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from loupe_models import anomaly_model
from loupe_models.anomaly_model import Scoring, Sidecar
from loupe_models.preprocess import Placement, margin_for, to_pixels
from loupe_training.patchcore import metrics
from loupe_training.patchcore.detector import DetectorConfig
from loupe_training.trainer import _choose_scoring


@pytest.mark.parametrize("width,height", [(103, 388), (620, 240), (256, 256), (1, 900)])
def test_letterbox_keeps_the_aspect_ratio_inside_the_margin(width, height):
    size = 256
    image = Image.new("RGB", (width, height), (200, 100, 50))
    pixels, place = to_pixels(image, size)
    margin = margin_for(size)
    assert max(place.width, place.height) == size - 2 * margin
    scale = (size - 2 * margin) / max(width, height)
    assert abs(place.width - max(1, width * scale)) <= 1 and abs(place.height - max(1, height * scale)) <= 1
    assert place.x >= margin and place.y >= margin
    assert place.x + place.width <= size - margin and place.y + place.height <= size - margin
    inside = np.zeros((size, size), bool)
    place.crop(inside)[...] = True
    assert (pixels[:, inside] > 0).all()  # the image, wherever the placement says
    assert (pixels[:, ~inside] == 0).all()  # black letterbox around it
    assert place.crop(pixels).shape == (3, place.height, place.width)


def test_image_score_reads_only_the_image_region():
    size = 64
    place = Placement(16, 4, 32, 56)
    canvas = np.zeros((size, size), np.float32)
    canvas[0:2, 0:2] = 100.0  # hot letterbox border: not the image
    canvas[30, 30] = 5.0
    rule = Scoring(top_k=1, subtract_background=False)
    assert anomaly_model.image_score(canvas, place, rule) == 5.0
    minus_mean = anomaly_model.image_score(canvas, place, Scoring(top_k=1, subtract_background=True))
    assert minus_mean == pytest.approx(5.0 - 5.0 / (32 * 56))


def test_f1_optimal_threshold_matches_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(20):
        scores = rng.normal(size=40)
        labels = rng.random(40) < 0.3
        labels[0] = True
        t = anomaly_model.f1_optimal_threshold(scores, labels)
        best = max(metrics.classification(scores, labels, c)["f1"] for c in np.concatenate([scores, [np.inf]]))
        assert metrics.classification(scores, labels, t)["f1"] == pytest.approx(best)


def test_cross_validated_predictions_are_not_fitted_on_themselves():
    """On labels unrelated to the scores, the threshold fitted on all images flatters itself;
    the cross-validated predictions do not. On separable data both are perfect."""
    rng = np.random.default_rng(0)
    scores = rng.normal(size=60)
    labels = np.zeros(60, bool)
    labels[rng.choice(60, 15, replace=False)] = True
    extra = rng.normal(size=20)
    fitted = anomaly_model.calibrate(np.concatenate([extra, scores[~labels]]), scores[labels])
    in_sample = metrics.classification(scores, labels, fitted.threshold)["f1"]
    predicted = anomaly_model.cross_validated_predictions(scores, labels, extra)
    assert metrics.confusion(predicted, labels)["f1"] < in_sample
    separable = np.where(labels, scores + 10, scores)
    predicted = anomaly_model.cross_validated_predictions(separable, labels, extra)
    assert (predicted == labels).all()


def test_a_flagged_image_never_has_an_empty_mask():
    region = np.zeros((40, 30), np.float32)
    region[20, 10] = 1.0  # a peak far below the pixel threshold, one pixel wide
    mask = anomaly_model.anomaly_mask(region, pixel_threshold=50.0, size=(7, 9))
    assert mask.shape == (9, 7) and mask.any()
    broad = np.zeros((40, 30), np.float32)
    broad[10:30, 5:15] = 10.0
    mask = anomaly_model.anomaly_mask(broad, pixel_threshold=50.0, size=(300, 400))
    assert mask.shape == (400, 300)
    # relative to the image's own map: the hot block, not the whole image
    assert 0.1 < mask.mean() < 0.3


def test_sidecar_is_typed_and_versioned():
    good = {"input": {"shape": [1, 3, 256, 256]}, "threshold": 1.0, "pixel_threshold": 2.0,
            "calibration": {"threshold": 1.0, "temperature": 0.5, "normal_mean": 0.0, "normal_std": 0.3,
                            "method": "normal-distribution"},
            "scoring": {"top_k": 16, "subtract_background": False}}
    sidecar = Sidecar.model_validate(good)
    assert sidecar.format == "loupe-patchcore-v2" and sidecar.input.size == 256
    with pytest.raises(ValidationError):
        Sidecar.model_validate({**good, "format": "loupe-patchcore-v1"})
    with pytest.raises(ValidationError):
        Sidecar.model_validate({**good, "calibration": {**good["calibration"], "temperature": 0}})


def test_training_picks_the_image_score_rule_that_ranks_labelled_anomalies_best():
    config = DetectorConfig(top_k=8)
    plain, minus = Scoring(top_k=8, subtract_background=False), Scoring(top_k=8, subtract_background=True)
    labels = np.array([0, 0, 0, 1, 1])
    chosen = _choose_scoring(config, {plain: np.array([1, 2, 3, 2.5, 4.0]), minus: np.array([1, 2, 3, 4, 5.0])}, labels)
    assert chosen == minus
    tie = _choose_scoring(config, {plain: np.array([1, 2, 3, 4, 5.0]), minus: np.array([1, 2, 3, 4, 5.0])}, labels)
    assert tie == plain  # the configured rule keeps ties
    assert _choose_scoring(config, {plain: np.zeros(3), minus: np.ones(3)}, np.zeros(3, int)) == plain
