"""Classification metrics in plain numpy, shared by ``vgate eval``, ``vgate probe`` and training.

Precision/recall/F1, ROC-AUC, calibration, the primary-label confusion table, and the probe's
unsafe-vs-safe and per-category summaries; no scikit-learn at run time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from vgate.categories import CATEGORY_IDS
from vgate.inputs.labelled import SAFE

PRIMARY_LABELS = (*CATEGORY_IDS, SAFE)
"""Rows/columns of the confusion table: the five categories, then ``safe``."""


def precision_recall_f1(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[float, float, float]:
    """Binary precision, recall and F1; 0.0 where undefined (scikit-learn's zero_division=0)."""
    truth = np.asarray(y_true, dtype=bool)
    pred = np.asarray(y_pred, dtype=bool)
    tp = float(np.sum(truth & pred))
    fp = float(np.sum(~truth & pred))
    fn = float(np.sum(truth & ~pred))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return precision, recall, f1


def roc_auc(y_true: ArrayLike, scores: ArrayLike) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with tied ranks averaged); None if one class."""
    truth = np.asarray(y_true, dtype=bool)
    values = np.asarray(scores, dtype=np.float64)
    n_pos = int(truth.sum())
    n_neg = len(truth) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(values, kind="mergesort")
    sorted_scores = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    # average 1-based ranks over runs of equal scores
    starts = np.flatnonzero(np.r_[True, np.diff(sorted_scores) != 0])
    ends = np.r_[starts[1:], len(values)]
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    u = ranks[truth].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def calibration_bins(
    y_true: np.ndarray, probs: np.ndarray, n_bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal-width bins over [0, 1]: (count, mean predicted probability, observed frequency)."""
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    probs = np.asarray(probs, dtype=np.float64).ravel()
    idx = np.clip((probs * n_bins).astype(int), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    safe_count = np.maximum(count, 1)
    mean_prob = np.bincount(idx, weights=probs, minlength=n_bins) / safe_count
    freq = np.bincount(idx, weights=y_true, minlength=n_bins) / safe_count
    return count, mean_prob, freq


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> float:
    """ECE: bin-weighted mean |observed frequency - mean probability| (10 equal-width bins).

    For ``[n, 5]`` inputs every (item, category) pair counts as one binary prediction.
    """
    count, mean_prob, freq = calibration_bins(y_true, probs, n_bins)
    return float(np.sum(count * np.abs(freq - mean_prob)) / max(count.sum(), 1))


def primary_labels(y: np.ndarray) -> np.ndarray:
    """Index into ``PRIMARY_LABELS`` of each row's first category (fixed order), 5 = safe."""
    y = np.asarray(y, dtype=bool)
    return np.where(y.any(axis=1), np.argmax(y, axis=1), len(CATEGORY_IDS))


def predicted_primary(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Index of the highest-scoring category at or above its threshold, 5 (safe) if none."""
    margin = np.where(scores >= thresholds, scores, -np.inf)
    return np.where(np.isfinite(margin).any(axis=1), np.argmax(margin, axis=1), len(CATEGORY_IDS))


def confusion_table(y: np.ndarray, scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``[6, 6]`` counts: true primary label (rows) vs predicted primary label (columns)."""
    k = len(PRIMARY_LABELS)
    true_idx = primary_labels(y)
    pred_idx = predicted_primary(scores, thresholds)
    return np.bincount(true_idx * k + pred_idx, minlength=k * k).reshape(k, k)


def compute_metrics(y: np.ndarray, scores: np.ndarray, thresholds: np.ndarray) -> dict[str, Any]:
    """All metrics for multi-hot labels ``y[n, 5]`` and probabilities ``scores[n, 5]``."""
    y = np.asarray(y, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    hits = scores >= thresholds
    unsafe = np.asarray(y.any(axis=1))
    flagged = np.asarray(hits.any(axis=1))
    precision, recall, f1 = precision_recall_f1(unsafe, flagged)
    per_category = {}
    for j, cat in enumerate(CATEGORY_IDS):
        p, r, f = precision_recall_f1(y[:, j], hits[:, j])
        per_category[cat] = {
            "precision": p,
            "recall": r,
            "f1": f,
            "support": int(y[:, j].sum()),
            "roc_auc": roc_auc(y[:, j], scores[:, j]),
            "threshold": float(thresholds[j]),
        }
    return {
        "n": len(y),
        "n_unsafe": int(unsafe.sum()),
        "binary": {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "roc_auc": roc_auc(unsafe, scores.max(axis=1)),
            "false_positive_rate": float(np.mean(flagged[~unsafe])) if (~unsafe).any() else None,
        },
        "per_category": per_category,
        "macro_f1": float(np.mean([m["f1"] for m in per_category.values()])),
        "ece": expected_calibration_error(y, scores),
        "confusion": {
            "labels": list(PRIMARY_LABELS),
            "matrix": confusion_table(y, scores, thresholds).tolist(),
        },
    }


def format_metric(value: float | None, digits: int = 3) -> str:
    """A metric for a table: ``0.918``, or ``-`` when it is undefined."""
    return "-" if value is None else f"{value:.{digits}f}"


def unsafe_metrics(
    is_unsafe: ArrayLike, is_flagged: ArrayLike, score: ArrayLike | None = None
) -> dict[str, Any]:
    """Binary unsafe-vs-safe metrics of ``flagged`` against ``unsafe`` (bool arrays)."""
    unsafe = np.asarray(is_unsafe, dtype=bool)
    flagged = np.asarray(is_flagged, dtype=bool)
    n_unsafe, n_safe = int(unsafe.sum()), int((~unsafe).sum())
    precision, _, f1 = precision_recall_f1(unsafe, flagged)
    return {
        "accuracy": float(np.mean(unsafe == flagged)) if len(unsafe) else None,
        "unsafe_recall": float(flagged[unsafe].mean()) if n_unsafe else None,
        "safe_fpr": float(flagged[~unsafe].mean()) if n_safe else None,
        "unsafe_precision": precision,
        "unsafe_f1": f1,
        "roc_auc": None if score is None else roc_auc(unsafe, score),
        "n_unsafe": n_unsafe,
        "n_safe": n_safe,
    }


def category_f1(
    labels: np.ndarray, probs: np.ndarray, thresholds: np.ndarray
) -> tuple[dict[str, float | None], float | None]:
    """Per-category F1 at ``thresholds`` and their mean over categories with positives."""
    per: dict[str, float | None] = {}
    for i, cid in enumerate(CATEGORY_IDS):
        truth = labels[:, i].astype(bool)
        per[cid] = (
            precision_recall_f1(truth, probs[:, i] >= thresholds[i])[2] if truth.any() else None
        )
    kept = [v for v in per.values() if v is not None]
    return per, (float(np.mean(kept)) if kept else None)
