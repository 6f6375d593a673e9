"""Backbone taps -> patch features: each tap is averaged over its 3x3 neighbourhood (local
context, as PatchCore) and brought to the grid of the finest tap; channels are concatenated."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

from loupe_models.catalogue import MEAN, STD

from .geometry import average_pool3, bilinear_matrix


def session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


class FeatureExtractor:
    def __init__(self, backbone_path: str, taps: Sequence[str], image_size: int, threads: int = 2) -> None:
        self.backbone_path = backbone_path
        self.taps = list(taps)
        self.image_size = image_size
        self.session = ort.InferenceSession(
            backbone_path, session_options(threads), providers=["CPUExecutionProvider"]
        )
        probe = self.session.run(self.taps, {"image": np.zeros((1, 3, image_size, image_size), np.float32)})
        self.tap_grids = [tuple(p.shape[2:]) for p in probe]
        self.grid: tuple[int, int] = self.tap_grids[0]
        self.dim = sum(p.shape[1] for p in probe)

    @staticmethod
    def normalise(pixels: np.ndarray) -> np.ndarray:
        """(N, 3, S, S) RGB in 0..255 -> the backbone's input scale."""
        return ((pixels / np.float32(255.0) - np.float32(MEAN)) / np.float32(STD)).astype(np.float32)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 3, S, S) RGB 0..255 -> (N, h, w, D) patch features on the finest tap's grid."""
        outputs = self.session.run(self.taps, {"image": self.normalise(pixels)})
        parts = []
        for tap in outputs:
            pooled = average_pool3(tap)
            if tap.shape[2:] != self.grid:
                ry = bilinear_matrix(self.grid[0], tap.shape[2]).astype(np.float32)
                rx = bilinear_matrix(self.grid[1], tap.shape[3]).astype(np.float32)
                pooled = ry @ pooled @ rx.T
            parts.append(pooled)
        features = np.concatenate(parts, axis=1)
        return np.ascontiguousarray(features.transpose(0, 2, 3, 1))
