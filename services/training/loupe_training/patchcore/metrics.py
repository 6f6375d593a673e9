"""Evaluation metrics: AUROC (image and pixel), precision/recall/F1 at a threshold, PR curve."""

from __future__ import annotations

import numpy as np


def auroc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve by the rank statistic (ties count half); None if one class only."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).astype(bool).ravel()
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average ranks over ties
    boundaries = np.concatenate([[0], np.nonzero(np.diff(sorted_scores))[0] + 1, [len(scores)]])
    for lo, hi in zip(boundaries[:-1], boundaries[1:], strict=True):
        ranks[order[lo:hi]] = (lo + hi + 1) / 2
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def classification(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """Precision, recall and F1 of the anomaly class at a threshold."""
    return confusion(np.asarray(scores) >= threshold, labels)


def confusion(predicted: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 of the anomaly class. With no anomalous images and no alarm,
    precision and recall are 1 (nothing was missed, nothing was falsely flagged)."""
    predicted = np.asarray(predicted).astype(bool)
    y = np.asarray(labels).astype(bool)
    tp = int((predicted & y).sum())
    fp = int((predicted & ~y).sum())
    fn = int((~predicted & y).sum())
    tn = int((~predicted & ~y).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def pr_curve(scores: np.ndarray, labels: np.ndarray, points: int = 50) -> list[tuple[float, float, float]]:
    """(threshold, precision, recall) at evenly spaced score quantiles."""
    scores = np.asarray(scores, dtype=np.float64)
    out = []
    for t in np.unique(np.quantile(scores, np.linspace(0, 1, points))):
        m = classification(scores, labels, float(t))
        out.append((float(t), m["precision"], m["recall"]))
    return out
