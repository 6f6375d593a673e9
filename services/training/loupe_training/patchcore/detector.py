"""The training pipeline: fit a memory bank on normal images (bounded memory), learn the border
normalisation from leave-one-out scores, score images, calibrate, and hand everything to export.

Pixels arrive letterboxed (loupe_models.preprocess) with each image's Placement; image scores
and the pixel threshold are read from the image's own region of the map."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from loupe_models.anomaly_model import Calibration, Scoring, calibrate, image_score
from loupe_models.preprocess import Placement

from .coreset import KCenterGreedySampler
from .features import FeatureExtractor
from .scoring import PatchScorer, bank_radii, border_normalisation, nearest_distances, search_matrix


@dataclass(frozen=True)
class DetectorConfig:
    backbone: str = "efficientnet-lite0"
    # Stride 8 for detail plus stride 16 for context: on real magnetic tiles block4 alone ranked
    # defects at 0.85-0.87 image AUROC, block4 + block10 at 0.89-0.90 (docs/benchmarks.md, detector choices).
    taps: tuple[str, ...] = ("block4", "block10")
    image_size: int = 256
    # Memory bank rows kept (coreset), the inference cost driver. 8192 with block4+block10 runs as fast
    # as 16384 did with block4 alone (bench_detector_speed.py), at the same MTD accuracy (0.867 vs 0.873).
    bank_size: int = 8192
    pool_factor: int = 4  # candidates held during extraction = pool_factor * bank_size
    projection_dim: int = 64
    density_k: int = 8  # bank row radius = distance to its k-th nearest row (power distance); 0 = plain
    blur_sigma: float = 4.0
    top_k: int = 256  # image score = mean of the top-k anomaly-map pixels on the image
    subtract_background: bool = False  # ... minus the image's mean map level
    border_rings: int = 0  # the letterbox margin keeps image edges off the canvas edge
    loo_images: int = 40  # training images scored leave-one-out (border statistics, normal scores)
    batch_size: int = 8
    seed: int = 0


Progress = Callable[[str, float], None]
Batch = tuple[np.ndarray, list[Placement]]  # (n, 3, S, S) pixels and where each image lies on them


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
    loo_maps: np.ndarray = field(default_factory=lambda: np.empty((0, 0, 0), np.float32))
    loo_places: list[Placement] = field(default_factory=list)
    pixel_threshold: float = 0.0
    stats: dict = field(default_factory=dict)

    def features(self, pixels: np.ndarray) -> np.ndarray:
        return self.extractor(pixels)

    @property
    def scoring(self) -> Scoring:
        return Scoring(top_k=self.config.top_k, subtract_background=self.config.subtract_background)

    def image_scores(self, maps: np.ndarray, places: list[Placement],
                     scoring: Scoring | None = None) -> np.ndarray:
        rule = scoring or self.scoring
        return np.array([image_score(m, p, rule) for m, p in zip(maps, places, strict=True)])

    @property
    def loo_scores(self) -> np.ndarray:
        """Image scores of the training images scored leave-one-out (normal, never in the bank)."""
        return self.image_scores(self.loo_maps, self.loo_places)

    def use_scoring(self, scoring: Scoring) -> None:
        self.config = replace(self.config, top_k=scoring.top_k,
                              subtract_background=scoring.subtract_background)

    def fit(self, batches: Iterable[Batch], total: int, progress: Progress | None = None) -> None:
        """batches: normal training images, `total` in all."""
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
        kept_places: list[Placement] = []
        seen = 0
        for pixels, places in batches:
            feats = self.features(pixels)
            for image, place in zip(feats, places, strict=True):
                flat = image.reshape(per_image, -1)
                rows = flat if share == per_image else flat[rng.choice(per_image, share, replace=False)]
                pools.append(rows)
                owner_parts.append(np.full(len(rows), seen, np.int32))
                if len(kept) < cfg.loo_images:
                    kept.append(image)
                    kept_places.append(place)
                seen += 1
            if progress:
                progress(f"Extracted features of {seen} of {total} training images",
                         0.6 * seen / max(total, 1))
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
        self.scorer = PatchScorer(bank, radii, grid, cfg.image_size, scale, shift, cfg.blur_sigma)
        self.loo_maps = self.scorer.anomaly_maps(loo * scale + shift)
        self.loo_places = (kept_places[: len(self.loo_maps)]
                           or [Placement(0, 0, cfg.image_size, cfg.image_size)])
        # Mask pixels are judged on the map's own scale: above what normal images reach.
        peaks = np.array([p.crop(m).max() for m, p in zip(self.loo_maps, self.loo_places, strict=True)])
        self.pixel_threshold = float(peaks.mean() + 3 * (peaks.std(ddof=1) if len(peaks) > 1 else 0.0))
        self.stats = {"training_images": seen, "bank_rows": int(len(bank)), "feature_dim": int(bank.shape[1]),
                      "grid": list(grid), "loo_images": len(kept)}

    def score(self, pixels: np.ndarray, places: list[Placement]) -> tuple[np.ndarray, np.ndarray]:
        """(n, 3, S, S) letterboxed pixels -> image scores (n,) and anomaly maps (n, S, S)."""
        maps = self.anomaly_maps(self.features(pixels))
        return self.image_scores(maps, places), maps

    def anomaly_maps(self, features: np.ndarray) -> np.ndarray:
        """(n, h, w, D) patch features -> anomaly maps (n, S, S)."""
        if self.scorer is None:
            raise RuntimeError("fit first")
        return self.scorer.anomaly_maps(self.scorer.patch_maps(features))

    def calibrate(self, normal_scores: np.ndarray, anomaly_scores: np.ndarray | None) -> Calibration:
        self.calibration = calibrate(normal_scores, anomaly_scores)
        return self.calibration

    def config_dict(self) -> dict:
        return asdict(self.config)
