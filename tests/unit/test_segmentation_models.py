"""Classification and segmentation models, trained for real on small product-like images: which
kind training makes, the anomaly classes a segmentation model learns from colour masks, the
graph's class scores against numpy, and what DetectAnomalyResult carries for each kind."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from helpers import pattern_png
from loupe_inference.runtime import ModelRuntime
from loupe_models import anomaly_model
from loupe_training.patchcore.detector import DetectorConfig
from loupe_training.trainer import train

SIZE = 160
SCRATCH, DENT = ("scratch", "#2CA02C"), ("dent", "#1f77b4")
COLOR_MAP = [{"name": SCRATCH[0], "color": SCRATCH[1]}, {"name": DENT[0], "color": DENT[1]}]


def defect_png(seed: int, kind: str) -> tuple[bytes, bytes]:
    """A pattern image with one defect of `kind` and its colour mask (white background)."""
    rng = np.random.default_rng(seed)
    with Image.open(io.BytesIO(pattern_png(seed))) as base:
        rgb = np.asarray(base.convert("RGB")).astype(np.float32)
    yy, xx = np.indices((SIZE, SIZE))
    y0, x0 = (int(v) for v in rng.integers(40, SIZE - 60, 2))
    if kind == "scratch":  # a bright diagonal line, 3 px thick
        where = (np.abs((yy - y0) - (xx - x0) // 2) <= 1) & (xx >= x0) & (xx < x0 + 44)
        rgb[where] = [255, 250, 240]
    else:  # a dark dent
        where = (yy - y0 - 10) ** 2 + (xx - x0 - 10) ** 2 < 81
        rgb[where] = [25, 18, 12]
    mask = np.full((SIZE, SIZE, 3), 255, np.uint8)
    mask[where] = anomaly_model.hex_rgb(SCRATCH[1] if kind == "scratch" else DENT[1])
    out, out_mask = io.BytesIO(), io.BytesIO()
    Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(out, "PNG")
    Image.fromarray(mask).save(out_mask, "PNG")
    return out.getvalue(), out_mask.getvalue()


class Blobs(dict):
    def entry(self, name: str, label: int, image: bytes, mask: bytes | None = None, classes=None) -> dict:
        self[f"{name}.png"] = image
        if mask is not None:
            self[f"{name}-mask.png"] = mask
        return {"source_ref": f"s3://b/{name}.png", "label": label, "blob_key": f"{name}.png",
                "mask_key": f"{name}-mask.png" if mask is not None else None, "anomaly_classes": classes or [],
                "background_colors": ["#ffffff"] if classes else []}


def trained(masked: bool):
    blobs = Blobs()
    normal = [blobs.entry(f"n{i}", 0, pattern_png(i)) for i in range(14)]
    train_defects, test = [], [blobs.entry(f"t{i}", 0, pattern_png(300 + i)) for i in range(6)]
    for i in range(12):
        kind = "scratch" if i % 2 else "dent"
        image, mask = defect_png(100 + i, kind)
        entry = blobs.entry(f"d{i}", 1, image, mask if masked else None, COLOR_MAP if masked else None)
        (train_defects if i < 6 else test).append(entry)
    config = DetectorConfig(image_size=128, bank_size=4096, top_k=16, loo_images=12)
    output = train(config=config, train_entries=normal + train_defects, test_entries=test, fetch=blobs.__getitem__,
                   progress=lambda *_: None, title="t")
    return output, ModelRuntime(output.model_onnx, output.sidecar)


@pytest.fixture(scope="module")
def segmentation():
    return trained(masked=True)


@pytest.fixture(scope="module")
def classification():
    return trained(masked=False)


def test_without_masks_training_makes_a_classification_model(classification):
    output, runtime = classification
    assert output.evaluation_result["ModelKind"] == "classification"
    assert output.sidecar["kind"] == "classification" and output.sidecar["classes"] == []
    detection = runtime.detect(Image.open(io.BytesIO(defect_png(500, "dent")[0])))
    result = detection.lookout_result()
    assert set(result) == {"Source", "IsAnomalous", "Confidence"}  # no Anomalies, no AnomalyMask
    assert detection.is_anomalous and detection.mask_png is not None  # kept for the native route


def test_with_colour_masks_training_makes_a_segmentation_model_that_names_the_classes(segmentation):
    output, runtime = segmentation
    result = output.evaluation_result
    assert result["ModelKind"] == "segmentation"
    assert [(c["Name"], c["Color"]) for c in result["AnomalyClasses"]] == [SCRATCH, DENT]
    assert result["ClassesLearnedFrom"] == "training dataset masks" and result["ClassesWithoutExamples"] == []
    assert result["ClassAccuracyImages"] >= 5 and result["ClassAccuracy"] >= 0.8, result
    right = 0
    for i, kind in enumerate(["scratch", "dent"] * 4):
        image, _ = defect_png(700 + i, kind)
        found = runtime.detect(Image.open(io.BytesIO(image))).lookout_result()
        assert found["Anomalies"][0]["Name"] == "background"
        names = {a["Name"]: a["PixelAnomaly"]["Color"] for a in found["Anomalies"][1:]}
        assert set(names) <= {SCRATCH[0], DENT[0]} and all(names[n] == dict([SCRATCH, DENT])[n] for n in names)
        right += found["IsAnomalous"] and max(found["Anomalies"][1:], key=lambda a: a["PixelAnomaly"][
            "TotalPercentageArea"])["Name"] == kind
    assert right >= 7, right


def test_the_mask_is_painted_in_the_class_colours(segmentation):
    _, runtime = segmentation
    result = runtime.detect(Image.open(io.BytesIO(defect_png(800, "dent")[0]))).lookout_result()
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(result["AnomalyMask"]))).convert("RGB"))
    for anomaly in result["Anomalies"]:
        share = (mask == anomaly_model.hex_rgb(anomaly["PixelAnomaly"]["Color"])).all(-1).mean()
        assert share == pytest.approx(anomaly["PixelAnomaly"]["TotalPercentageArea"], abs=1e-6)


def test_the_graphs_class_scores_equal_numpy(segmentation):
    from loupe_training.segmentation import patch_scores

    output, runtime = segmentation
    assert "class_scores" in runtime.outputs
    pixels, _ = __import__("loupe_models.preprocess", fromlist=["x"]).decode_pixels(defect_png(900, "scratch")[0], 128)
    graph = runtime.session.run(["class_scores"], {"pixels": pixels[None]})[0]
    assert graph.shape[1] == 2 and np.abs(graph).max() <= 1 + 1e-4
    # Rebuild the numpy side from the graph's own exemplars.
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(output.model_onnx)
    flat = numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == "exemplarsT")).T
    exemplars = flat.reshape(2, -1, flat.shape[1])
    from loupe_models.catalogue import model_path
    from loupe_training.patchcore.features import FeatureExtractor

    config = DetectorConfig(image_size=128)
    features = FeatureExtractor(str(model_path(config.backbone)), config.taps, 128)(pixels[None])[0]
    assert np.abs(graph - patch_scores(features, exemplars)).max() < 1e-4


def test_a_region_takes_the_class_of_its_hottest_pixels():
    mask = np.zeros((20, 20), bool)
    mask[2:8, 2:8] = True  # 36 pixels: the hottest tenth is the 2 x 2 block below
    scores = np.zeros((20, 20, 2), np.float32)
    scores[..., 0] = 0.6  # most of the region looks like class 0 ...
    scores[5:7, 5:7, 1] = 0.9  # ... its hottest pixels like class 1
    heat = np.linspace(0, 0.5, 400, dtype=np.float32).reshape(20, 20)
    heat[5:7, 5:7] = 1.0
    assert set(anomaly_model.classify_regions(mask, scores)[mask]) == {0}
    assert set(anomaly_model.classify_regions(mask, scores, heat)[mask]) == {1}


def test_regions_take_one_class_each():
    mask = np.zeros((20, 20), bool)
    mask[2:6, 2:6] = mask[12:18, 12:18] = True
    scores = np.zeros((20, 20, 2), np.float32)
    scores[..., 0] = 0.5
    scores[2:6, 2:4, 1] = 0.9  # the first region leans to class 1 on average (0.6 against 0.5)
    scores[2:6, 4:6, 1] = 0.3
    scores[12:18, 12:18, 1] = 0.1
    classes = anomaly_model.classify_regions(mask, scores)
    assert set(classes[2:6, 2:6].ravel()) == {1} and set(classes[12:18, 12:18].ravel()) == {0}
    assert (classes[~mask] == -1).all()
    assert set(anomaly_model.classify_regions(mask, None)[mask]) == {0}


def test_too_many_anomaly_classes_fail_training_before_any_image_is_read():
    from loupe_training.trainer import TrainingError

    many = [{"name": f"kind-{i}", "color": f"#{i:06x}"} for i in range(101)]
    entries = [{"source_ref": f"s3://b/{i}.png", "label": 1, "blob_key": f"{i}.png", "mask_key": f"{i}-m.png",
                "anomaly_classes": many[i:i + 1]} for i in range(101)]

    def fetch(key: str) -> bytes:
        raise AssertionError(f"{key} was read")

    with pytest.raises(TrainingError, match="101 anomaly classes; a model learns at most 100"):
        train(config=DetectorConfig(image_size=128), train_entries=entries, test_entries=[], fetch=fetch,
              progress=lambda *_: None, title="t")


def test_the_hottest_unlabelled_patches_join_the_nearest_class():
    from loupe_training.segmentation import with_hot_patches

    patches = np.full((8, 8), -1, np.int32)
    patches[1, 1], patches[6, 6] = 0, 1
    heat = np.zeros((8, 8), np.float32)
    heat[2, 2], heat[5, 6], heat[2, 7] = 3.0, 2.0, 1.0  # beside class 0, beside class 1, nearer 1
    heat[6, 6] = 5.0  # already labelled: stays class 1
    heat[4, 0] = -np.inf  # outside the image: never taken
    out = with_hot_patches(patches, heat, count=4)
    assert out[2, 2] == 0 and out[5, 6] == 1 and out[6, 6] == 1
    assert out[2, 7] == 1 and out[4, 0] == -1
    assert (out >= 0).sum() == 5  # the two labelled and three joined: (6, 6), among the four hottest, had its class
    assert (with_hot_patches(np.full((4, 4), -1, np.int32), heat[:4, :4]) == -1).all()  # no labels: none given


def test_patch_heat_is_read_inside_the_image_only():
    from loupe_models.preprocess import Placement
    from loupe_training.segmentation import grid_heat

    canvas_map = np.zeros((64, 64), np.float32)
    canvas_map[16:48, 0:32] = 1.0
    heat = grid_heat(canvas_map, Placement(0, 16, 64, 32), (8, 8))
    assert np.isinf(heat[:2]).all() and np.isinf(heat[6:]).all()  # letterbox margins
    assert (heat[2:6, :4] == 1.0).all() and (heat[2:6, 4:] == 0.0).all()
