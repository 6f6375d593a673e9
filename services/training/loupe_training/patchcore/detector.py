"""The training pipeline: fit a memory bank on normal images (bounded memory), learn the border
normalisation from leave-one-out scores, score images, calibrate, and hand everything to export."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

from .calibration import Calibration, calibrate
from .coreset import KCenterGreedySampler
from .features import FeatureExtractor
from .scoring import PatchScorer, bank_radii, border_normalisation, nearest_distances, search_matrix


@dataclass(frozen=True)
class DetectorConfig:
    backbone: str = "efficientnet-lite0"
    taps: tuple[str, ...] = ("block4",)
    image_size: int = 256
    bank_size: int = 16384  # memory bank rows kept (coreset), the inference cost driver
    pool_factor: int = 4  # candidates held during extraction = pool_factor * bank_size
    projection_dim: int = 64
    density_k: int = 8  # bank row radius = distance to its k-th nearest row (power distance); 0 = plain
    blur_sigma: float = 4.0
    top_k: int = 256  # image score = mean of the top-k anomaly-map pixels minus the map mean
    border_rings: int = 2
    loo_images: int = 40  # training images scored leave-one-out (border statistics, normal scores)
    batch_size: int = 8
    seed: int = 0


Progress = Callable[[str, float], None]


def _leave_one_out(kept: list[np.ndarray], bank: np.ndarray, radii: np.ndarray,
                   owners: np.ndarray) -> np.ndarray:
    """(N, h, w) raw patch scores of each kept training image against the bank without its own rows."""
    maps = []
    for i, features in enumerate(kept):
        others = owners != i
        search = search_matrix(bank[others], radii[others])
        patches = features.reshape(-1, features.shape[-1])
        maps.append(nearest_distances(patches, search).reshape(features.shape[:2]))
    return np.stack(maps)


@dataclass
class Detector:
    config: DetectorConfig
    extractor: FeatureExtractor
    scorer: PatchScorer | None = None
    calibration: Calibration | None = None
    loo_scores: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    pixel_threshold: float = 0.0
    stats: dict = field(default_factory=dict)

    def features(self, pixels: np.ndarray) -> np.ndarray:
        return self.extractor(pixels)

    def fit(self, batches: Iterable[np.ndarray], total: int, progress: Progress | None = None) -> None:
        """batches: (n, 3, S, S) pixel arrays of normal training images, `total` images in all."""
        cfg = self.config
        sampler = KCenterGreedySampler(cfg.projection_dim, cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        grid = self.extractor.grid
        per_image = grid[0] * grid[1]
        # Bounded memory: each image contributes a fixed share of its patches, so the candidate
        # pool never exceeds pool_factor * bank_size rows however many images there are.
        share = min(per_image, int(np.ceil(cfg.pool_factor * cfg.bank_size / max(total, 1))))
        pools: list[np.ndarray] = []
        owner_parts: list[np.ndarray] = []
        kept: list[np.ndarray] = []  # full features of the first loo_images images
        seen = 0
        for pixels in batches:
            feats = self.features(pixels)
            for image in feats:
                flat = image.reshape(per_image, -1)
                rows = flat if share == per_image else flat[rng.choice(per_image, share, replace=False)]
                pools.append(rows)
                owner_parts.append(np.full(len(rows), seen, np.int32))
                if len(kept) < cfg.loo_images:
                    kept.append(image)
                seen += 1
            if progress:
                progress(f"Extracted features of {seen} of {total} training images", 0.6 * seen / max(total, 1))
        pool = np.concatenate(pools)
        owners = np.concatenate(owner_parts)
        del pools, owner_parts
        if progress:
            progress("Selecting the memory bank", 0.62)
        keep = sampler.select_coreset(pool, cfg.bank_size)
        bank, bank_owners = pool[keep], owners[keep]
        # The leave-one-out scoring below reuses these radii: a held-out image's rows counted among
        # its neighbours' k nearest, so radii run a little small and leave-one-out scores a little
        # high, the safe side for a threshold (and within 0.002 AUROC of exact per-subset radii).
        radii = bank_radii(bank, cfg.density_k)

        if progress:
            progress("Scoring training images leave-one-out", 0.75)
        if len(kept) > 1:
            loo = _leave_one_out(kept, bank, radii, bank_owners)
        else:
            loo = np.zeros((1, *grid), np.float32)
        scale, shift = border_normalisation(loo, cfg.border_rings)
        self.scorer = PatchScorer(bank, radii, grid, cfg.image_size, scale, shift, cfg.blur_sigma, cfg.top_k)
        loo_maps = self.scorer.anomaly_maps(loo * scale + shift)
        # The highest background level normal images show (leave-one-out maps run a little hot,
        # which keeps normal images clear of the global term).
        backgrounds = loo_maps.reshape(len(loo_maps), -1).mean(axis=1)
        spread = backgrounds.std(ddof=1) if len(backgrounds) > 1 else 0.0
        self.scorer.background_ceiling = float(max(backgrounds.max(), backgrounds.mean() + 3 * spread))
        self.loo_scores = self.scorer.image_scores(loo_maps)
        # Mask pixels are judged on the map's own scale: above what normal images reach.
        peaks = loo_maps.reshape(len(loo_maps), -1).max(axis=1)
        self.pixel_threshold = float(peaks.mean() + 3 * (peaks.std(ddof=1) if len(peaks) > 1 else 0.0))
        self.stats = {"training_images": seen, "bank_rows": int(len(bank)), "feature_dim": int(bank.shape[1]),
                      "grid": list(grid), "loo_images": len(kept),
                      "background_ceiling": round(self.scorer.background_ceiling, 6)}

    def score(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, 3, S, S) -> image scores (n,) and anomaly maps (n, S, S)."""
        assert self.scorer is not None, "fit first"
        maps = self.scorer.anomaly_maps(self.scorer.patch_maps(self.features(pixels)))
        return self.scorer.image_scores(maps), maps

    def calibrate(self, normal_scores: np.ndarray, anomaly_scores: np.ndarray | None) -> Calibration:
        self.calibration = calibrate(normal_scores, anomaly_scores)
        return self.calibration

    def config_dict(self) -> dict:
        return asdict(self.config)
