"""The detector's components and its ONNX export, on the real exported backbone (make models)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from helpers import pattern_png
from loupe_models.anomaly_model import calibrate, confidence, f1_optimal_threshold, image_score
from loupe_models.catalogue import model_path
from loupe_models.preprocess import decode_pixels
from loupe_training.patchcore import metrics
from loupe_training.patchcore.coreset import KCenterGreedySampler
from loupe_training.patchcore.detector import Detector, DetectorConfig
from loupe_training.patchcore.export import export
from loupe_training.patchcore.features import FeatureExtractor
from loupe_training.patchcore.geometry import average_pool3, bilinear_matrix, gaussian_matrix
from loupe_training.patchcore.scoring import bank_radii, nearest_distances, search_matrix

SIZE = 128


def images(seeds, defect: bool = False):
    """Letterboxed pixels of pattern images and their placements, as the detector takes them."""
    loaded = [decode_pixels(pattern_png(seed, defect), SIZE) for seed in seeds]
    return np.stack([p for p, _ in loaded]), [place for _, place in loaded]


@pytest.fixture(scope="module")
def fitted() -> Detector:
    config = DetectorConfig(taps=("block4", "block10"), image_size=SIZE, bank_size=2048, top_k=16, loo_images=12)
    extractor = FeatureExtractor(str(model_path(config.backbone)), config.taps, SIZE)
    detector = Detector(config, extractor)
    detector.fit((images(range(i, i + 4)) for i in range(0, 12, 4)), total=12)
    detector.calibrate(detector.loo_scores, None)
    return detector


def test_coreset_is_distinct_and_covers():
    rng = np.random.default_rng(0)
    clusters = np.concatenate([rng.normal(c, 0.01, (200, 8)) for c in (0, 5, 10, 15)]).astype(np.float32)
    chosen = KCenterGreedySampler(projection_dim=8).select_coreset(clusters, 4)
    assert len(set(chosen.tolist())) == 4
    assert sorted({int(i) // 200 for i in chosen}) == [0, 1, 2, 3]  # one centre per cluster
    assert len(KCenterGreedySampler().select_coreset(clusters, 10_000)) == len(clusters)


def test_power_distance_equals_brute_force():
    rng = np.random.default_rng(1)
    bank = rng.normal(size=(300, 12)).astype(np.float32)
    queries = rng.normal(size=(50, 12)).astype(np.float32) * 1.5
    d = np.sqrt(((bank[:, None] - bank[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    radii = bank_radii(bank, 4, chunk=64)  # chunked, so the self-exclusion offset is exercised
    np.testing.assert_allclose(radii, np.sort(d, axis=1)[:, 3], rtol=1e-4)
    power = ((queries[:, None] - bank[None]) ** 2).sum(-1) - radii[None] ** 2
    expected = power.min(axis=1)
    got = nearest_distances(queries, search_matrix(bank, radii), chunk=16)
    np.testing.assert_allclose(got, np.sign(expected) * np.sqrt(np.abs(expected)), rtol=1e-3, atol=1e-3)
    assert (got < 0).any() and (got > 0).any()  # some queries fall inside a row's radius
    plain = nearest_distances(queries, search_matrix(bank))
    np.testing.assert_allclose(plain, np.sqrt(((queries[:, None] - bank[None]) ** 2).sum(-1).min(1)), rtol=1e-4)
    assert not bank_radii(bank[:3], 4).any()  # fewer rows than k: no radius, plain distances


def test_rare_normal_content_is_judged_by_its_own_spread():
    """A query as far from a sparse cluster as that cluster's rows are from each other scores
    lower than the same offset from a tight cluster: the point of the power distance."""
    rng = np.random.default_rng(2)
    tight = rng.normal(0, 0.05, (400, 6))
    sparse = rng.normal(10, 1.0, (12, 6))
    bank = np.concatenate([tight, sparse]).astype(np.float32)
    search = search_matrix(bank, bank_radii(bank, 8))
    offset = np.full((1, 6), 0.8, np.float32)
    near_tight = nearest_distances(tight[:1].astype(np.float32) + offset, search)
    near_sparse = nearest_distances(sparse[:1].astype(np.float32) + offset, search)
    assert near_sparse[0] < near_tight[0]


def test_geometry_operators():
    assert np.allclose(bilinear_matrix(8, 4).sum(1), 1) and np.allclose(gaussian_matrix(16, 2).sum(1), 1)
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    pooled = average_pool3(x)
    assert pooled[0, 0, 0] == pytest.approx(np.mean([0, 1, 4, 5]))
    assert pooled[0, 1, 1] == pytest.approx(np.mean([0, 1, 2, 4, 5, 6, 8, 9, 10]))


def test_auroc_and_classification():
    assert metrics.auroc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert metrics.auroc(np.array([0.5, 0.5]), np.array([0, 1])) == 0.5
    assert metrics.auroc(np.array([1.0, 2.0]), np.array([0, 0])) is None
    m = metrics.classification(np.array([0.1, 0.9, 0.4]), np.array([0, 1, 1]), 0.5)
    assert (m["precision"], m["recall"]) == (1.0, 0.5)


def test_thresholds():
    scores = np.array([1.0, 1.1, 1.2, 3.0, 3.5])
    labels = np.array([0, 0, 0, 1, 1])
    assert 1.2 < f1_optimal_threshold(scores, labels) < 3.0
    both = calibrate(scores[:3], scores[3:])
    assert both.method == "f1-optimal" and 1.2 < both.threshold < 3.0
    assert confidence(3.5, both.threshold, both.temperature) > 0.9
    assert confidence(1.0, both.threshold, both.temperature) > 0.9


def test_normal_only_threshold_is_sensible(fitted):
    """With normal images alone the threshold comes from the normal distribution: held-out normal
    images stay below it, defective ones go above, and Confidence is a probability."""
    cal = fitted.calibration
    assert cal.method == "normal-distribution"
    normal_scores, _ = fitted.score(*images(range(100, 108)))
    defect_scores, _ = fitted.score(*images(range(200, 208), defect=True))
    assert (normal_scores < cal.threshold).mean() >= 0.75
    assert (defect_scores >= cal.threshold).mean() >= 0.75
    assert metrics.auroc(np.concatenate([normal_scores, defect_scores]), np.repeat([0, 1], 8)) >= 0.95
    sure = confidence(np.concatenate([normal_scores, defect_scores]), cal.threshold, cal.temperature)
    assert ((sure >= 0.5) & (sure <= 1)).all()


def test_exported_graph_equals_the_training_pipeline(fitted, tmp_path):
    onnx_path, sidecar = export(fitted, tmp_path)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    pixels = np.concatenate([images([300 + i], defect=bool(i % 2))[0] for i in range(6)])
    places = [images([300 + i], defect=bool(i % 2))[1][0] for i in range(6)]
    scores, maps = fitted.score(pixels, places)
    for i in range(len(pixels)):
        (amap,) = session.run(["anomaly_map"], {"pixels": pixels[i : i + 1]})
        assert np.abs(amap[0, 0] - maps[i]).max() <= 1e-4 * max(1.0, float(np.abs(maps[i]).max()))
        score = image_score(amap[0, 0], places[i], fitted.scoring)
        assert abs(score - float(scores[i])) <= 1e-4 * max(1.0, abs(float(scores[i])))
    meta = __import__("json").loads(sidecar.read_text())
    assert meta["threshold"] == fitted.calibration.threshold
    assert meta["input"]["shape"] == [1, 3, SIZE, SIZE] and meta["format"] == "loupe-patchcore-v2"
    assert meta["input"]["resize"] == "letterbox-pillow-bilinear"
    assert meta["scoring"] == {"top_k": fitted.config.top_k, "subtract_background": fitted.config.subtract_background}
    names = {i.name for i in session.get_inputs()}
    assert names == {"pixels"}  # the threshold is not an input baked into the graph either


def test_an_image_anomalous_everywhere_is_flagged(fitted):
    """Noise is anomalous everywhere: its top-k level stands above every normal image's."""
    from helpers import png_bytes

    loaded = [decode_pixels(png_bytes(SIZE, SIZE, seed=s), SIZE) for s in range(3)]
    noise_scores, _ = fitted.score(np.stack([p for p, _ in loaded]), [place for _, place in loaded])
    normal_scores, _ = fitted.score(*images(range(400, 406)))
    assert (noise_scores > fitted.calibration.threshold).all(), (noise_scores, fitted.calibration.threshold)
    assert noise_scores.min() > normal_scores.max()
