"""A worse default model cannot land silently: binary F1 on a committed sample of the
near-duplicate-free dev split (rows no shipped model trained on; training/splits.py)."""

from __future__ import annotations

from pathlib import Path

from vgate.categories import CATEGORY_IDS
from vgate.commands.eval import score_texts
from vgate.core.gate import Gate
from vgate.detectors.prompt_model import PromptModelDetector
from vgate.inputs.labelled import load_labelled_csv
from vgate.metrics import compute_metrics
from vgate.resources import DEFAULT_MODEL

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "prompts_dev_sample.csv"


def test_sample_is_the_size_the_card_states() -> None:
    data = load_labelled_csv(SAMPLE)
    assert len(data.texts) == 400
    assert 0.3 < data.y.any(axis=1).mean() < 0.7  # both classes well represented


def test_default_model_keeps_binary_f1_on_the_dev_sample() -> None:
    data = load_labelled_csv(SAMPLE)
    gate = Gate("default")
    assert gate.model_ref == DEFAULT_MODEL
    thresholds = [float(gate.policy.categories[c].threshold) for c in CATEGORY_IDS]
    scores = score_texts(PromptModelDetector(DEFAULT_MODEL), data.texts)
    metrics = compute_metrics(data.y, scores, thresholds)
    assert metrics["binary"]["f1"] >= 0.90, metrics["binary"]
