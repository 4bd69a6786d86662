"""Evaluate a detector on a labelled CSV (``id,text,label``): binary and per-category metrics.

Metrics are plain numpy so that evaluation needs nothing beyond the scan-time dependencies.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vgate.categories import CATEGORY_IDS, CATEGORY_INDEX
from vgate.detectors.base import Detection, Detector
from vgate.errors import InputError
from vgate.files import UnreadableFile, open_regular
from vgate.safe_yaml import shown

SAFE = "safe"
REQUIRED_COLUMNS = ("id", "text", "label")
PRIMARY_LABELS = (*CATEGORY_IDS, SAFE)
"""Rows/columns of the confusion table: the five categories, then ``safe``."""


@dataclass
class LabelledData:
    """Prompts with their multi-hot labels ``y[n, 5]`` (all zero = safe)."""

    ids: list[str]
    texts: list[str]
    y: np.ndarray


def parse_label(label: str) -> np.ndarray:
    """``safe`` or ``a|b`` -> multi-hot ``[5]`` int8; ``ValueError`` names what is wrong."""
    parts = [p.strip() for p in label.strip().split("|")]
    y = np.zeros(len(CATEGORY_IDS), dtype=np.int8)
    if parts == [SAFE]:
        return y
    for part in parts:
        if part == SAFE:
            raise ValueError(
                f"label {shown(label.strip())}: 'safe' cannot be combined with other labels "
                "(a prompt is either safe or in one or more categories)"
            )
        if part not in CATEGORY_INDEX:
            expected = ", ".join((SAFE, *CATEGORY_IDS))
            raise ValueError(
                f"unknown label {shown(part)} (expected {expected}, multi-labels joined by |)"
            )
        y[CATEGORY_INDEX[part]] = 1
    return y


def load_labelled_csv(path: Path) -> LabelledData:
    """Read ``id,text,label`` (extra columns ignored, BOM tolerated); bad input is an InputError."""
    try:
        raw = open_regular(path)
    except UnreadableFile as exc:
        raise InputError(f"{path}: {exc}") from None
    try:
        with raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            columns = reader.fieldnames or []
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if not columns:
                raise InputError(f"{path}: empty file (expected a header id,text,label)")
            if missing:
                raise InputError(
                    f"{path}: missing column(s) {', '.join(missing)} "
                    f"(found {', '.join(columns)}; expected id,text,label)"
                )
            ids, texts, labels = [], [], []
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if row["text"] is None or row["label"] is None:
                    raise InputError(f"{where}: row has fewer fields than the header")
                try:
                    labels.append(parse_label(row["label"]))
                except ValueError as exc:
                    raise InputError(f"{where} (id {shown(row['id'])}): {exc}") from None
                ids.append(row["id"])
                texts.append(row["text"])
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV ({exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not ids:
        raise InputError(f"{path}: no data rows")
    return LabelledData(ids, texts, np.stack(labels))


# --- metrics (numpy) -------------------------------------------------------------------------


def precision_recall_f1(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float, float]:
    """Binary precision, recall and F1; 0.0 where undefined (scikit-learn's zero_division=0)."""
    y_true = np.asarray(y_true, dtype=bool)
    y_pred = np.asarray(y_pred, dtype=bool)
    tp = float(np.sum(y_true & y_pred))
    fp = float(np.sum(~y_true & y_pred))
    fn = float(np.sum(y_true & ~y_pred))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return precision, recall, f1


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with tied ranks averaged); None if one class."""
    y_true = np.asarray(y_true, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(y_true.sum())
    n_neg = len(y_true) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # average 1-based ranks over runs of equal scores
    starts = np.flatnonzero(np.r_[True, np.diff(sorted_scores) != 0])
    ends = np.r_[starts[1:], len(scores)]
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    u = ranks[y_true].sum() - n_pos * (n_pos + 1) / 2.0
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
    unsafe = y.any(axis=1)
    precision, recall, f1 = precision_recall_f1(unsafe, hits.any(axis=1))
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
            "false_positive_rate": float(np.mean(hits.any(axis=1)[~unsafe]))
            if (~unsafe).any()
            else None,
        },
        "per_category": per_category,
        "macro_f1": float(np.mean([m["f1"] for m in per_category.values()])),
        "ece": expected_calibration_error(y, scores),
        "confusion": {
            "labels": list(PRIMARY_LABELS),
            "matrix": confusion_table(y, scores, thresholds).tolist(),
        },
    }


# --- running a detector ------------------------------------------------------------------------


def score_texts(detector: Detector, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
    """Run ``detector`` over ``texts`` in batches; float32 ``[n, 5]``."""
    parts = [
        np.asarray(detector.detect(texts[i : i + batch_size]).scores, dtype=np.float32)
        for i in range(0, len(texts), batch_size)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, len(CATEGORY_IDS)), np.float32)


def threshold_vector(thresholds: dict[str, float]) -> np.ndarray:
    """Per-category thresholds in ``CATEGORY_IDS`` order (0.5 where not given)."""
    return np.array([thresholds.get(c, 0.5) for c in CATEGORY_IDS], dtype=np.float64)


def evaluate_file(data: Path, detector: Detector, thresholds: dict[str, float]) -> dict[str, Any]:
    """Score every row of the labelled CSV ``data`` and return the metrics report."""
    labelled = load_labelled_csv(Path(data))
    start = time.perf_counter()
    scores = score_texts(detector, labelled.texts)
    seconds = time.perf_counter() - start
    report = compute_metrics(labelled.y, scores, threshold_vector(thresholds))
    report.update(
        data=str(data),
        detector=getattr(detector, "name", type(detector).__name__),
        seconds=round(seconds, 3),
    )
    return report


def write_report(report: dict[str, Any], path: Path) -> None:
    """Write the report as indented JSON."""
    Path(path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def format_metric(value: float | None, digits: int = 3) -> str:
    """A metric for a table: ``0.918``, or ``-`` when it is undefined."""
    return "-" if value is None else f"{value:.{digits}f}"


def render_report(report: dict[str, Any]) -> list[Any]:
    """Rich renderables (binary summary, per-category table, confusion table) for a report."""
    from rich.table import Table

    b = report["binary"]
    summary = Table(title=f"{report['detector']} on {report['data']} ({report['n']} prompts)")
    for col in ("unsafe P", "unsafe R", "unsafe F1", "ROC-AUC", "safe FPR", "ECE"):
        summary.add_column(col, justify="right")
    summary.add_row(
        *map(
            format_metric,
            (b["precision"], b["recall"], b["f1"], b["roc_auc"], b["false_positive_rate"]),
        ),
        format_metric(report["ece"]),
    )
    per_cat = Table(title="Per category")
    for col in ("category", "threshold", "precision", "recall", "F1", "ROC-AUC", "support"):
        per_cat.add_column(col, justify="left" if col == "category" else "right")
    for cat, m in report["per_category"].items():
        per_cat.add_row(
            cat,
            *map(
                format_metric, (m["threshold"], m["precision"], m["recall"], m["f1"], m["roc_auc"])
            ),
            str(m["support"]),
        )
    conf = Table(title="Confusion (rows: true primary label, columns: predicted)")
    conf.add_column("true \\ predicted")
    labels = report["confusion"]["labels"]
    for label in labels:
        conf.add_column(label, justify="right")
    for label, row in zip(labels, report["confusion"]["matrix"], strict=True):
        conf.add_row(label, *map(str, row))
    return [summary, per_cat, conf]


def print_report(report: dict[str, Any]) -> None:
    """Print the report tables to stdout."""
    from rich.console import Console

    console = Console()
    for renderable in render_report(report):
        console.print(renderable)


class GateDetector:
    """Adapts a ``vgate.gate.Gate`` (policy + its detectors, max-combined) to ``detect``."""

    def __init__(self, gate: Any) -> None:
        self.gate = gate
        self.name = "+".join(gate.detector_names)

    def detect(self, texts: Sequence[str]) -> Detection:
        return Detection(self.gate.scores(texts))


def run_eval(
    data: Path,
    policy: str = "default",
    detectors: str | None = None,
    model: str | None = None,
    output: Path | None = None,
) -> dict[str, Any]:
    """``vgate eval``: score ``data`` through the policy's gate, print tables, write JSON."""
    from vgate.gate import Gate

    gate = Gate(policy, detectors=detectors, model=model)
    thresholds = {c: float(gate.policy.categories[c].threshold) for c in CATEGORY_IDS}
    report = evaluate_file(data, GateDetector(gate), thresholds)
    report.update(
        policy=str(policy), model=gate.model_ref if "model" in gate.detector_names else None
    )
    print_report(report)
    if output is not None:
        write_report(report, output)
    return report
