"""benchmarks/model_candidates.py: the cascade band under the speed bar, on synthetic scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")  # the benchmark imports the training modules
pytest.importorskip("sklearn")

from benchmarks import model_candidates as mc
from vgate.resources import DEFAULT_MODEL


def speed_file(tmp_path: Path, steady: float, share: float, transformer: float) -> Path:
    path = tmp_path / "model_speed.json"
    path.write_text(
        json.dumps(
            {
                "vgate_scan_jsonl": {
                    DEFAULT_MODEL: {"steady_prompts_per_s": steady, "escalated_share": share}
                },
                "model_alone": {
                    "builtin:prompt-v2-minilm": {"prompts_per_s_calls_of_1024": transformer}
                },
            }
        )
    )
    return path


def test_speed_bar_escalation_follows_the_measured_costs(tmp_path: Path) -> None:
    # 1,250 prompts/s with 20 % escalated to a 400 prompts/s transformer: 0.8 ms a prompt, of
    # which 0.5 ms is the transformer's; the other 0.3 ms leave 0.7 ms = 28 % for the bar of 1,000
    cap = mc.speed_bar_escalation(speed_file(tmp_path, 1250.0, 0.2, 400.0))
    assert cap == pytest.approx(0.28)
    assert mc.speed_bar_escalation(speed_file(tmp_path, 1250.0, 0.2, 400.0), bar=4000.0) == 0.0
    slower = mc.speed_bar_escalation(speed_file(tmp_path, 1250.0, 0.2, 200.0))
    assert 0 < slower < cap  # a slower transformer part may take fewer prompts


def synthetic(n: int = 400, seed: int = 0) -> tuple[mc.Bank, dict, dict]:
    """Rows of two families; the first stage is noisy, the second knows the labels."""
    rng = np.random.default_rng(seed)
    y = np.zeros((n, mc.tpm.N_CAT), np.int64)
    y[: n // 2, 0] = 1
    rows = mc.tpm.Rows(
        [f"p{i}" for i in range(n)],
        y,
        ["distorted_weird" if i < n // 2 else "safe" for i in range(n)],
        ["i2p" if i % 2 else "vbench" for i in range(n)],
    )
    train, dev = np.arange(0, n - 100), np.arange(n - 100, n)
    bank = mc.Bank(rows, train, dev, {mc.MEASURE_NONPROMPT: dev[:2], mc.ALARMING: dev[2:4]})
    noisy = y.astype(np.float64)
    noisy[:, 0] = np.clip(noisy[:, 0] + rng.normal(0, 0.25, n), 0.0, 1.0)
    first = {"loso_probs": noisy, "final_probs": noisy}
    exact = y.astype(np.float64)
    second = {"loso_probs": exact, "final_probs": exact}
    return bank, first, second


def test_cascade_choice_keeps_to_the_escalation_limit() -> None:
    bank, first, second = synthetic()
    free = mc.cascade_choice(bank, first, second)
    assert free["chosen"]["loso_escalated"] > 0.1  # sending more to the exact stage pays
    capped = mc.cascade_choice(bank, first, second, max_escalated=0.1)
    assert capped["chosen"]["loso_escalated"] <= 0.1
    assert all(r["loso_escalated"] <= 0.1 for r in capped["sweep_top"])
    assert capped["chosen"]["f1"] < free["chosen"]["f1"]
    with pytest.raises(ValueError, match="no band"):
        mc.cascade_choice(bank, first, second, max_escalated=0.0)
