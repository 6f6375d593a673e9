"""A packaged Loupe model on the edge: the bundle a model packaging job writes, opened, checked
against its manifest and scored with numpy and onnxruntime alone.

Bundle layout (a folder, or the zip the job wrote): manifest.json (format, component, model ARN,
a SHA-256 per file), recipe.json (Greengrass), model/model.onnx and model/model.json (the hosted
model's graph and sidecar, unchanged). Scoring follows loupe_edge.rules exactly as the hosted
model does, so the same image gets the same score on both.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from . import rules
from .pixels import resize_float, resize_rgb

BUNDLE_FORMAT = "loupe-edge-bundle/1"
MODEL_FORMAT = "loupe-patchcore-v2"
# Where AWS's Edge Agent clients connect by default (the system temporary directory).
EDGE_AGENT_SOCKET = "/tmp/aws.iot.lookoutvision.EdgeAgent.sock"  # noqa: S108 - AWS's contract, not a temp file


class BundleError(Exception):
    """A bundle that cannot be served: unreadable, altered, or of a format this runtime does not know."""


@dataclass(frozen=True)
class Bundle:
    component: str
    version: str
    model_arn: str
    source: Path
    manifest: dict
    files: dict[str, bytes] = field(repr=False)

    @classmethod
    def open(cls, source: Path) -> Bundle:
        """A bundle folder or zip, every file checked against the manifest's SHA-256."""
        try:
            if source.is_dir():
                files = {p.relative_to(source).as_posix(): p.read_bytes()
                         for p in source.rglob("*") if p.is_file()}
            else:
                with zipfile.ZipFile(source) as archive:
                    files = {name: archive.read(name)
                             for name in archive.namelist() if not name.endswith("/")}
            manifest = json.loads(files["manifest.json"])
        except (OSError, zipfile.BadZipFile, KeyError, ValueError) as error:
            raise BundleError(f"{source}: not a readable bundle ({error})") from None
        if manifest.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"{source}: bundle format {manifest.get('format')!r}, "
                              f"this runtime reads {BUNDLE_FORMAT}")
        for path, facts in manifest.get("files", {}).items():
            if path not in files:
                raise BundleError(f"{source}: {path} is missing")
            if hashlib.sha256(files[path]).hexdigest() != facts.get("sha256"):
                raise BundleError(f"{source}: {path} does not match its SHA-256 in manifest.json")
        for needed in ("model/model.onnx", "model/model.json"):
            if needed not in manifest.get("files", {}):
                raise BundleError(f"{source}: the manifest does not list {needed}")
        component = manifest.get("component", {})
        return cls(component.get("name", ""), component.get("version", ""), manifest.get("model_arn", ""),
                   source, manifest, files)

    @property
    def onnx_bytes(self) -> int:
        return len(self.files["model/model.onnx"])


@dataclass(frozen=True)
class EdgeDetection:
    score: float
    threshold: float
    is_anomalous: bool
    confidence: float
    classes: np.ndarray | None  # (height, width) class index per pixel, -1 background; None: not flagged
    anomalies: list[tuple[str, str, float]]  # (name, "#RRGGBB", share of the image), background first
    kind: str

    def mask_rgb(self, colors: tuple[str, ...], height: int, width: int) -> np.ndarray:
        """The mask as packed RGB888, each anomaly class in its colour on the background's."""
        classes = self.classes if self.classes is not None else np.full((height, width), -1, np.int32)
        return rules.paint_mask(classes, colors)


class EdgeModel:
    """One bundle's model loaded into onnxruntime."""

    def __init__(self, bundle: Bundle, threads: int = 1) -> None:
        sidecar = json.loads(bundle.files["model/model.json"])
        if sidecar.get("format") != MODEL_FORMAT:
            raise BundleError(f"model format {sidecar.get('format')!r}, this runtime reads {MODEL_FORMAT}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(bundle.files["model/model.onnx"], options,
                                            providers=["CPUExecutionProvider"])
        self.size = int(sidecar["input"]["shape"][-1])
        self.threshold = float(sidecar["threshold"])
        self.pixel_threshold = float(sidecar["pixel_threshold"])
        self.temperature = float(sidecar["calibration"]["temperature"])
        self.top_k = int(sidecar["scoring"]["top_k"])
        self.subtract_background = bool(sidecar["scoring"]["subtract_background"])
        self.kind = sidecar.get("kind", "segmentation")
        listed = [(c["name"], c["color"]) for c in sidecar.get("classes")
                  or [dict(zip(("name", "color"), rules.GENERIC, strict=True))]]
        self.classes = listed if self.kind == "segmentation" else [rules.GENERIC]
        self.grid = tuple(sidecar.get("stats", {}).get("grid", ())) or None
        self.outputs = [o.name for o in self.session.get_outputs()
                        if o.name in ("anomaly_map", "class_scores")]

    @property
    def colors(self) -> tuple[str, ...]:
        return tuple(color for _, color in self.classes)

    def detect(self, rgb: np.ndarray) -> EdgeDetection:
        """Score a (height, width, 3) uint8 RGB frame as the hosted model scores the same image."""
        height, width = rgb.shape[:2]
        place = rules.Placement.of(width, height, self.size)
        resized = (rgb if (place.width, place.height) == (width, height)
                   else resize_rgb(rgb, (place.width, place.height)))
        pixels = rules.canvas(resized, self.size, place)
        outputs = dict(zip(self.outputs, self.session.run(self.outputs, {"pixels": pixels[None]}),
                           strict=True))
        region = place.crop(outputs["anomaly_map"][0, 0])
        score = rules.image_score(region, self.top_k, self.subtract_background)
        confidence = float(rules.confidence(score, self.threshold, self.temperature))
        flagged = score >= self.threshold
        if not flagged:
            return EdgeDetection(score, self.threshold, False, confidence, None, [(*rules.BACKGROUND, 1.0)],
                                 self.kind)
        heat = resize_float(region, (width, height))
        mask = rules.anomaly_mask(region, self.pixel_threshold, (width, height), heat)
        scores = None
        if "class_scores" in outputs and self.kind == "segmentation" and self.grid:
            scores = rules.class_scores_on_image(outputs["class_scores"], self.grid, place, self.size,
                                                 (width, height))
        classes = rules.classify_regions(mask, scores, heat)
        shares = np.bincount(classes[mask], minlength=len(self.classes)) / mask.size
        anomalies = [(*rules.BACKGROUND, 1.0 - float(mask.mean()))]
        anomalies += [(name, color, float(share))
                      for (name, color), share in zip(self.classes, shares, strict=True) if share > 0]
        return EdgeDetection(score, self.threshold, True, confidence, classes, anomalies, self.kind)


# --- what a packaging job puts in a bundle about the runtime -------------------------------------

RUNTIME_DIR = "runtime"  # the bundle's copy of this package: PYTHONPATH={bundle}/runtime
RUNTIME_REQUIREMENTS = ("numpy", "onnxruntime", "grpcio", "protobuf")


def runtime_files() -> dict[str, bytes]:
    """This package's own files, as a bundle carries them (`runtime/loupe_edge/...`), so an edge PC
    needs only the four requirements from PyPI, not a Loupe installation."""
    root = Path(__file__).parent
    return {f"{RUNTIME_DIR}/loupe_edge/{path.relative_to(root).as_posix()}": path.read_bytes()
            for path in sorted(root.rglob("*")) if path.is_file() and path.suffix in (".py", ".proto")}
