"""Greedy k-center coreset on random projections, vectorised.

Plain greedy k-center picks one centre per step, so selecting 16k centres means 16k passes over
the pool: minutes in numpy (anomalib users report hours). Here the pool is split into random
chunks that run greedy k-center in lockstep: every step picks one new centre in EVERY chunk with
one batched matrix-vector product, so the number of steps is size / chunks (a few hundred).
Each chunk is a random sample of the pool, so together they cover it as one greedy run would,
at the price of occasional near-duplicate centres across chunks.
"""

from __future__ import annotations

import numpy as np

STEPS = 512  # greedy steps per chunk; more steps = fewer, larger chunks = closer to plain greedy


class KCenterGreedySampler:
    def __init__(self, projection_dim: int = 64, seed: int = 0, steps: int = STEPS) -> None:
        self.projection_dim = projection_dim
        self.seed = seed
        self.steps = steps

    def project(self, points: np.ndarray) -> np.ndarray:
        dim = points.shape[1]
        if dim <= self.projection_dim:
            return points.astype(np.float32)
        rng = np.random.default_rng(self.seed)
        matrix = rng.normal(0, 1 / np.sqrt(self.projection_dim),
                            (dim, self.projection_dim)).astype(np.float32)
        return points.astype(np.float32) @ matrix

    def select_coreset(self, points: np.ndarray, size: int) -> np.ndarray:
        """Indices of `size` distinct points that cover `points`."""
        count = len(points)
        if size >= count:
            return np.arange(count)
        chunks = max(1, int(np.ceil(size / self.steps)))
        per_chunk = int(np.ceil(size / chunks))
        length = int(np.ceil(count / chunks))
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(count)
        padded = np.concatenate([order, np.full(chunks * length - count, -1)]).reshape(chunks, length)
        valid = padded >= 0
        projected = self.project(points)[np.where(valid, padded, 0)]  # (chunks, length, dim)
        norms = np.einsum("cld,cld->cl", projected, projected)
        nearest = np.where(valid, np.inf, -np.inf).astype(np.float32)
        rows = np.arange(chunks)
        chosen = np.empty((per_chunk, chunks), dtype=np.int64)
        pick = np.zeros(chunks, dtype=np.int64)  # each chunk starts at its first (random) point
        for step in range(per_chunk):
            chosen[step] = padded[rows, pick]
            centres = projected[rows, pick]  # (chunks, dim)
            distance = (norms - 2 * np.matmul(projected, centres[:, :, None])[..., 0]
                        + norms[rows, pick][:, None])
            np.minimum(nearest, distance, out=nearest)
            nearest[rows, pick] = -np.inf
            pick = np.argmax(nearest, axis=1)
        flat = chosen.ravel()
        flat = flat[flat >= 0]
        _, first = np.unique(flat, return_index=True)  # a chunk that ran out repeats -inf picks
        return flat[np.sort(first)][:size]
