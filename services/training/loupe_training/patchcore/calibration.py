"""Threshold and Confidence.

The threshold comes from the distribution of normal image scores (mean + 3 standard deviations),
so a model trained and tested on normal images alone still gets a sensible one; when anomalous
test images exist, the F1-optimal threshold is used instead. Confidence is a calibrated
probability of the predicted class: p(anomalous) = sigmoid((score - threshold) / temperature),
the temperature fitted by maximum likelihood when both classes exist, else the normal spread.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

NORMAL_SIGMAS = 3.0


@dataclass(frozen=True)
class Calibration:
    threshold: float
    temperature: float
    normal_mean: float
    normal_std: float
    method: str  # "normal-distribution" or "f1-optimal"

    def probability(self, scores: np.ndarray, threshold: float | None = None) -> np.ndarray:
        t = self.threshold if threshold is None else threshold
        z = np.clip((np.asarray(scores, dtype=np.float64) - t) / self.temperature, -50, 50)
        return 1.0 / (1.0 + np.exp(-z))

    def confidence(self, scores: np.ndarray, threshold: float | None = None) -> np.ndarray:
        p = self.probability(scores, threshold)
        t = self.threshold if threshold is None else threshold
        return np.where(np.asarray(scores) >= t, p, 1 - p)

    def as_dict(self) -> dict:
        return asdict(self)


def f1_optimal_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold (midway between two sorted scores) maximising F1; the middle of the best run."""
    order = np.argsort(scores)
    s, y = scores[order], labels[order].astype(bool)
    candidates = np.concatenate([[s[0] - 1e-6], (s[1:] + s[:-1]) / 2, [s[-1] + 1e-6]])
    positives = y.sum()
    best, best_ts = -1.0, []
    for t in candidates:
        predicted = s >= t
        tp = float((predicted & y).sum())
        fp = float((predicted & ~y).sum())
        f1 = 2 * tp / (2 * tp + fp + (positives - tp)) if positives else 0.0
        if f1 > best + 1e-12:
            best, best_ts = f1, [t]
        elif abs(f1 - best) <= 1e-12:
            best_ts.append(t)
    return float(np.median(best_ts))


def _fit_temperature(scores: np.ndarray, labels: np.ndarray, threshold: float, start: float) -> float:
    """Maximum-likelihood logistic temperature with the threshold fixed (1-D Newton on 1/T)."""
    x = scores - threshold
    a = 1.0 / max(start, 1e-6)
    for _ in range(50):
        p = 1 / (1 + np.exp(-np.clip(a * x, -50, 50)))
        gradient = float(((labels - p) * x).sum()) - 1e-3 * a  # tiny prior keeps separable data finite
        hessian = float(-(p * (1 - p) * x * x).sum()) - 1e-3
        step = gradient / hessian
        a = max(a - step, 1e-6)
        if abs(step) < 1e-8:
            break
    return 1.0 / a


def calibrate(normal_scores: np.ndarray, anomaly_scores: np.ndarray | None = None) -> Calibration:
    normal = np.asarray(normal_scores, dtype=np.float64)
    mean = float(normal.mean())
    std = float(normal.std(ddof=1)) if len(normal) > 1 else abs(mean) * 0.1
    std = max(std, 1e-6)
    if anomaly_scores is None or len(anomaly_scores) == 0:
        return Calibration(mean + NORMAL_SIGMAS * std, std, mean, std, "normal-distribution")
    anomalous = np.asarray(anomaly_scores, dtype=np.float64)
    scores = np.concatenate([normal, anomalous])
    labels = np.concatenate([np.zeros(len(normal)), np.ones(len(anomalous))])
    threshold = f1_optimal_threshold(scores, labels)
    temperature = _fit_temperature(scores, labels, threshold, start=std)
    return Calibration(threshold, temperature, mean, std, "f1-optimal")
