"""``vgate eval``: score a labelled CSV (``id,text,label``); binary and per-category metrics.

Metrics (:mod:`vgate.metrics`) are plain numpy so that evaluation needs nothing beyond the
scan-time dependencies.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vgate.categories import CATEGORY_IDS
from vgate.detectors.base import Detection, Detector
from vgate.inputs.labelled import load_labelled_csv
from vgate.metrics import compute_metrics, format_metric

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
    """Adapts a ``vgate.core.gate.Gate`` (policy + its detectors, max-combined) to ``detect``."""

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
    from vgate.core.gate import Gate

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
