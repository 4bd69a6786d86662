"""Evaluation metrics (checked against scikit-learn) and the labelled-CSV loader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vgate.categories import CATEGORY_IDS
from vgate.commands.eval import evaluate_file, render_report, write_report
from vgate.detectors.base import Detection
from vgate.errors import InputError
from vgate.inputs.labelled import load_labelled_csv
from vgate.metrics import (
    calibration_bins,
    compute_metrics,
    confusion_table,
    expected_calibration_error,
    precision_recall_f1,
    roc_auc,
)

metrics = pytest.importorskip("sklearn.metrics")

binary = arrays(np.int8, st.integers(1, 60), elements=st.integers(0, 1))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_precision_recall_f1_match_sklearn(data: st.DataObject) -> None:
    y_true = data.draw(binary)
    y_pred = data.draw(arrays(np.int8, len(y_true), elements=st.integers(0, 1)))
    p, r, f = precision_recall_f1(y_true, y_pred)
    assert p == pytest.approx(metrics.precision_score(y_true, y_pred, zero_division=0))
    assert r == pytest.approx(metrics.recall_score(y_true, y_pred, zero_division=0))
    assert f == pytest.approx(metrics.f1_score(y_true, y_pred, zero_division=0))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_roc_auc_matches_sklearn_including_ties(data: st.DataObject) -> None:
    y_true = data.draw(binary)
    # few distinct values so that ties are common
    scores = data.draw(arrays(np.float64, len(y_true), elements=st.sampled_from([0, 0.2, 0.5, 1])))
    expected = metrics.roc_auc_score(y_true, scores) if 0 < y_true.sum() < len(y_true) else None
    got = roc_auc(y_true, scores)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_roc_auc_continuous_scores() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    s = rng.random(500) + 0.3 * y
    assert roc_auc(y, s) == pytest.approx(metrics.roc_auc_score(y, s))


def test_ece_matches_reliability_curve() -> None:
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(1)
    probs = rng.random(2000)
    y = (rng.random(2000) < probs**1.5).astype(int)
    count, mean_prob, freq = calibration_bins(y, probs, 10)
    prob_true, prob_pred = calibration_curve(y, probs, n_bins=10, strategy="uniform")
    nonempty = count > 0
    np.testing.assert_allclose(freq[nonempty], prob_true)
    np.testing.assert_allclose(mean_prob[nonempty], prob_pred)
    expected = np.sum(count[nonempty] * np.abs(prob_true - prob_pred)) / count.sum()
    assert expected_calibration_error(y, probs) == pytest.approx(expected)


def test_ece_is_zero_when_perfectly_calibrated_and_large_when_not() -> None:
    y = np.array([1, 0, 1, 0])
    assert expected_calibration_error(y, np.full(4, 0.5)) == 0.0
    assert expected_calibration_error(y, 1 - y) == 1.0


def test_confusion_table_and_per_category_against_sklearn() -> None:
    rng = np.random.default_rng(2)
    y = (rng.random((300, 5)) < 0.15).astype(int)
    scores = np.clip(y * 0.6 + rng.random((300, 5)) * 0.5, 0, 1)
    thresholds = np.full(5, 0.5)
    report = compute_metrics(y, scores, thresholds)
    for j, cat in enumerate(CATEGORY_IDS):
        assert report["per_category"][cat]["f1"] == pytest.approx(
            metrics.f1_score(y[:, j], scores[:, j] >= 0.5, zero_division=0)
        )
        assert report["per_category"][cat]["support"] == int(y[:, j].sum())
    table = confusion_table(y, scores, thresholds)
    assert table.shape == (6, 6) and table.sum() == 300
    assert table.sum(axis=1)[5] == int((~y.any(axis=1)).sum())
    unsafe = y.any(axis=1)
    assert report["binary"]["roc_auc"] == pytest.approx(
        metrics.roc_auc_score(unsafe, scores.max(axis=1))
    )


# --- CSV loader --------------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "data.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return path


def test_loader_reads_bom_quotes_multilabels_and_extra_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'id,text,label,source\n1,"a cat, on a mat",safe,x\n2,"say ""hi""\nnow",'
        "terrifying|violent_bloody,y\n",
        bom=True,
    )
    data = load_labelled_csv(path)
    assert data.ids == ["1", "2"]
    assert data.texts == ["a cat, on a mat", 'say "hi"\nnow']
    assert data.y.tolist() == [[0, 0, 0, 0, 0], [0, 1, 0, 1, 0]]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("id,text,label\n", "no data rows"),
        ("id,prompt\n1,x\n", "missing column(s) text, label"),
        ("id,text,label\n1,x,safe\n7,y,gore\n", "id '7'"),
        ("id,text,label\n1,x,\n", "unknown label ''"),
        ("id,text,label\n1\n", "fewer fields"),
    ],
)
def test_loader_rejects_bad_input(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(InputError, match=r"data\.csv") as exc:
        load_labelled_csv(write(tmp_path, content))
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_loader_missing_and_binary_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_labelled_csv(tmp_path / "nope.csv")
    bad = tmp_path / "bin.csv"
    bad.write_bytes(b"id,text,label\n1,\xff\xfe,safe\n")
    with pytest.raises(InputError, match="not UTF-8"):
        load_labelled_csv(bad)


class KeywordDetector:
    """Scores 0.9 in violent_bloody when the text says 'blood'."""

    name = "keyword"

    def detect(self, texts: list[str]) -> Detection:
        scores = np.zeros((len(texts), 5), np.float32)
        scores[:, 3] = [0.9 if "blood" in t else 0.1 for t in texts]
        return Detection(scores)


def test_evaluate_file_end_to_end(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "id,text,label\n1,blood everywhere,violent_bloody\n2,a cat,safe\n3,blood moon,safe\n"
        "4,a nude,pornographic\n",
    )
    report = evaluate_file(path, KeywordDetector(), {"violent_bloody": 0.5})
    assert report["binary"]["precision"] == 0.5
    assert report["binary"]["recall"] == 0.5
    assert report["per_category"]["violent_bloody"]["f1"] == pytest.approx(2 / 3)
    assert report["confusion"]["matrix"][2][5] == 1  # pornographic predicted safe
    out = tmp_path / "r.json"
    write_report(report, out)
    assert json.loads(out.read_text())["n"] == 4
    assert len(render_report(report)) == 3
