"""Which models exist, where their ONNX files live, and how a file is checked before use."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

# Feature taps of the EfficientNet-Lite backbones: block index -> (channels, stride).
LITE0_TAPS = {2: (24, 4), 4: (40, 8), 7: (80, 16), 10: (112, 16)}
LITE2_TAPS = {4: (48, 8), 10: (120, 16)}
MEAN, STD = 0.498, 0.502  # the Lite models' input scaling: (x/255 - 0.498) / 0.502


@dataclass(frozen=True)
class ModelSpec:
    name: str
    file: str
    description: str


BACKBONES = {
    "efficientnet-lite0": ModelSpec(
        "efficientnet-lite0", "efficientnet-lite0-features.onnx",
        "EfficientNet-Lite0 (ImageNet) feature taps after blocks 2, 4, 7, 10; dynamic H and W",
    ),
    "efficientnet-lite2": ModelSpec(
        "efficientnet-lite2", "efficientnet-lite2-features.onnx",
        "EfficientNet-Lite2 (ImageNet) feature taps after blocks 4, 10; dynamic H and W",
    ),
}


def model_dir() -> Path:
    """LOUPE_MODEL_DIR, else .cache/models in the repository (where `make models` writes)."""
    configured = os.environ.get("LOUPE_MODEL_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / ".cache" / "models"


class ModelMissing(FileNotFoundError):
    pass


def model_path(name: str) -> Path:
    spec = BACKBONES[name]
    path = model_dir() / spec.file
    if not path.is_file():
        raise ModelMissing(f"{path} is missing: run `make models` (exports {spec.description})")
    return path


def manifest(name: str) -> dict:
    """What the export recorded: weights checksum, taps, and the reference outputs it verified."""
    return json.loads((model_path(name).with_suffix(".json")).read_text())
