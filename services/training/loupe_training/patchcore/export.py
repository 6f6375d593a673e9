"""Export a fitted detector as ONE ONNX graph: pixels (1, 3, S, S, RGB 0..255, letterboxed) ->
anomaly_map (1, 1, S, S). The memory bank, the distance computation, the border normalisation,
upsampling and blur are all inside the graph, built from the very arrays the training pipeline
used. The image score, threshold, confidence and mask rules are loupe_models.anomaly_model's,
applied to the map by training and inference alike; the sidecar carries their parameters."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, compose, helper, numpy_helper

from loupe_models.anomaly_model import FORMAT, ModelInput, Sidecar
from loupe_models.catalogue import MEAN, STD

from .detector import Detector
from .geometry import bilinear_matrix

OPSET = 17


def _const(name: str, value: np.ndarray | np.generic) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(value), name)


def _preprocess_graph(size: int) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Div", ["pixels", "c255"], ["unit"]),
        helper.make_node("Sub", ["unit", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["image"]),
    ]
    graph = helper.make_graph(
        nodes, "preprocess",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size])],
        initializer=[_const("c255", np.float32(255.0)), _const("mean", np.float32(MEAN)),
                     _const("std", np.float32(STD))],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def _head_graph(detector: Detector, tap_shapes: dict[str, tuple[int, ...]],
                exemplars: np.ndarray | None = None) -> onnx.ModelProto:
    """The PatchCore head; with `exemplars` (K, M, C), unit rows, also class_scores (h*w, K): each
    patch's cosine similarity to its nearest exemplar of each anomaly class."""
    scorer = detector.scorer
    if scorer is None:
        raise ValueError("the detector is not fitted")
    taps = detector.extractor.taps
    h, w = scorer.grid
    nodes, inits = [], []
    pooled = []
    for tap in taps:
        nodes.append(helper.make_node("AveragePool", [tap], [f"{tap}_pool"], kernel_shape=[3, 3],
                                      pads=[1, 1, 1, 1], strides=[1, 1], count_include_pad=0))
        name = f"{tap}_pool"
        th, tw = tap_shapes[tap][1:]
        if (th, tw) != (h, w):
            inits += [_const(f"{tap}_ry", bilinear_matrix(h, th).astype(np.float32)),
                      _const(f"{tap}_rxT", bilinear_matrix(w, tw).astype(np.float32).T)]
            nodes += [helper.make_node("MatMul", [f"{tap}_ry", name], [f"{tap}_y"]),
                      helper.make_node("MatMul", [f"{tap}_y", f"{tap}_rxT"], [f"{tap}_grid"])]
            name = f"{tap}_grid"
        pooled.append(name)
    inits += [
        _const("search", scorer.search),
        _const("ones", np.ones((h * w, 1), np.float32)),
        _const("patches_shape", np.array([h * w, scorer.bank.shape[1]], np.int64)),
        _const("grid_shape", np.array([h, w], np.int64)),
        _const("scale", scorer.scale.astype(np.float32)),
        _const("shift", scorer.shift.astype(np.float32)),
        _const("ry", scorer.ry),
        _const("rxT", scorer.rx.T.copy()),
        _const("map_shape", np.array([1, 1, scorer.image_size, scorer.image_size], np.int64)),
    ]
    nodes += [
        helper.make_node("Concat", pooled, ["features"], axis=1) if len(pooled) > 1
        else helper.make_node("Identity", pooled, ["features"]),
        helper.make_node("Transpose", ["features"], ["nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["nhwc", "patches_shape"], ["q"]),
        # |q - b|^2 - r_b^2 = |q|^2 + ([q, 1] @ search): one product, then the row minimum, then |q|^2
        # (see scoring.search_matrix); no elementwise pass over the (patches x bank) matrix.
        helper.make_node("Concat", ["q", "ones"], ["q1"], axis=1),
        helper.make_node("MatMul", ["q1", "search"], ["partial"]),
        helper.make_node("ReduceMin", ["partial"], ["partial_min"], axes=[1], keepdims=0),
        helper.make_node("Mul", ["q", "q"], ["q_sq"]),
        helper.make_node("ReduceSum", ["q_sq", "one_axis"], ["q_norms"], keepdims=0),
        helper.make_node("Add", ["partial_min", "q_norms"], ["d2_min"]),
        # signed square root: a power distance is negative inside a bank row's radius
        helper.make_node("Abs", ["d2_min"], ["d2_abs"]),
        helper.make_node("Sqrt", ["d2_abs"], ["d2_root"]),
        helper.make_node("Sign", ["d2_min"], ["d2_sign"]),
        helper.make_node("Mul", ["d2_sign", "d2_root"], ["distance"]),
        helper.make_node("Reshape", ["distance", "grid_shape"], ["raw_map"]),
        helper.make_node("Mul", ["raw_map", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "shift"], ["patch_map"]),
        helper.make_node("MatMul", ["ry", "patch_map"], ["up_y"]),
        helper.make_node("MatMul", ["up_y", "rxT"], ["full_map"]),
        helper.make_node("Reshape", ["full_map", "map_shape"], ["anomaly_map"]),
    ]
    inits.append(_const("one_axis", np.array([1], np.int64)))
    inputs = [helper.make_tensor_value_info(t, TensorProto.FLOAT, [1, *tap_shapes[t]]) for t in taps]
    outputs = [
        helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT,
                                      [1, 1, scorer.image_size, scorer.image_size]),
    ]
    if exemplars is not None:
        k, m, c = exemplars.shape
        inits += [_const("exemplarsT", exemplars.reshape(k * m, c).T.astype(np.float32).copy()),
                  _const("class_dot_shape", np.array([h * w, k, m], np.int64)),
                  _const("tiny", np.array(1e-12, np.float32))]
        nodes += [
            helper.make_node("MatMul", ["q", "exemplarsT"], ["exemplar_dot"]),
            helper.make_node("Reshape", ["exemplar_dot", "class_dot_shape"], ["class_dot_all"]),
            helper.make_node("ReduceMax", ["class_dot_all"], ["class_dot"], axes=[2], keepdims=0),
            helper.make_node("Max", ["q_norms", "tiny"], ["q_norms_safe"]),
            helper.make_node("Sqrt", ["q_norms_safe"], ["q_len"]),
            helper.make_node("Unsqueeze", ["q_len", "one_axis"], ["q_len_col"]),
            helper.make_node("Div", ["class_dot", "q_len_col"], ["class_scores"]),
        ]
        outputs.append(helper.make_tensor_value_info("class_scores", TensorProto.FLOAT, [h * w, k]))
    graph = helper.make_graph(nodes, "patchcore_head", inputs, outputs, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def build_graph(detector: Detector, exemplars: np.ndarray | None = None) -> onnx.ModelProto:
    size = detector.config.image_size
    backbone = onnx.load(detector.extractor.backbone_path)
    tap_shapes = {}
    probe = detector.extractor.session.run(detector.extractor.taps,
                                           {"image": np.zeros((1, 3, size, size), np.float32)})
    for tap, value in zip(detector.extractor.taps, probe, strict=True):
        tap_shapes[tap] = tuple(int(v) for v in value.shape[1:])
    # Keep only the taps the head reads; the rest of the backbone's outputs are pruned.
    backbone = onnx.utils.Extractor(backbone).extract_model(["image"], list(detector.extractor.taps))
    pre = _preprocess_graph(size)
    ir_version = min(backbone.ir_version, pre.ir_version)
    for model in (backbone, pre):
        model.ir_version = ir_version
        del model.opset_import[:]
        model.opset_import.extend([helper.make_opsetid("", OPSET)])
    merged = compose.merge_models(pre, backbone, io_map=[("image", "image")], prefix2="backbone_")
    head = _head_graph(detector, tap_shapes, exemplars)
    head.ir_version = merged.ir_version
    model = compose.merge_models(
        merged, head, io_map=[(f"backbone_{t}", t) for t in detector.extractor.taps]
    )
    model.graph.name = FORMAT
    onnx.checker.check_model(model)
    return model


def export(detector: Detector, directory: Path, *, extra: dict | None = None,
           exemplars: np.ndarray | None = None) -> tuple[Path, Path]:
    """Write model.onnx and model.json (the sidecar) into directory. `exemplars`: a segmentation
    model's anomaly class exemplars (two or more classes), in the order of the sidecar's classes."""
    if detector.scorer is None or detector.calibration is None:
        raise ValueError("the detector is not fitted and calibrated")
    directory.mkdir(parents=True, exist_ok=True)
    model = build_graph(detector, exemplars)
    onnx_path = directory / "model.onnx"
    onnx.save(model, str(onnx_path))
    data = onnx_path.read_bytes()
    import onnxruntime

    size = detector.config.image_size
    sidecar = Sidecar(
        input=ModelInput(shape=[1, 3, size, size]),
        threshold=detector.calibration.threshold,
        pixel_threshold=detector.pixel_threshold,
        calibration=detector.calibration,
        scoring=detector.scoring,
        detector=detector.config_dict(),
        stats=detector.stats,
        backbone=json.loads(Path(detector.extractor.backbone_path).with_suffix(".json").read_text()),
        onnx_sha256=hashlib.sha256(data).hexdigest(),
        versions={"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "numpy": np.__version__,
                  "opset": OPSET},
        **(extra or {}),
    )
    sidecar_path = directory / "model.json"
    sidecar_path.write_text(sidecar.model_dump_json(indent=2))
    return onnx_path, sidecar_path
