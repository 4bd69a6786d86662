"""Distil the fine-tuned encoder into the static model (issue 12, candidate c).

The static model (``train_static_model.py``) is itself a distillation: every vocabulary token is
run alone through the encoder (``[CLS] token [SEP]``, mean-pooled) and a prompt is the normalised
sum of its tokens' rows. Here the rows come from the encoder whose top layer
``finetune_top.fit`` trained on source-balanced batches, instead of the frozen one, so the fast
path inherits what fine-tuning learnt. The tokens' states below the trained layer do not depend
on the fit and are computed once. Everything after the token table (PCA, token weights, the
bag-of-tokens part, the calibrated heads) is the static model's own code, trained on the same
rows as the fine-tuning. Settings are fixed in advance; none is chosen on dev or a held-out family.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import finetune_top
import numpy as np
import torch
import train_prompt_model as tpm
import train_static_model as tsm


def lower_token_states(settings: finetune_top.Settings, ids: np.ndarray) -> torch.Tensor:
    """``[len(ids), 3, hidden]`` float16: ``[CLS] token [SEP]`` after the frozen layers."""
    encoder, _, cls_id, sep_id = tsm._teacher(settings.cut)
    out = torch.zeros(len(ids), 3, encoder.config.hidden_size, dtype=torch.float16)
    with torch.inference_mode():
        for start in range(0, len(ids), 512):
            tok = torch.from_numpy(np.asarray(ids[start : start + 512], np.int64))
            inp = tsm.alone_in_context(tok, cls_id, sep_id)
            out[start : start + len(tok)] = encoder(input_ids=inp).last_hidden_state.half()
    return out


def vocab_lower_states(settings: finetune_top.Settings, cache_dir: Path) -> torch.Tensor:
    """``lower_token_states`` of the whole vocabulary, computed once per encoder and depth."""
    key = f"{tpm.ENCODER_NAME}|cut{settings.cut}|vocab-cls-token-sep|fp16"
    key += f"|{(tpm.encoder_dir() / 'model.safetensors').stat().st_size}"
    path = cache_dir / f"vocab-lower-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npy"
    if path.exists():
        return torch.from_numpy(np.load(path))
    vocab = tpm.load_tokenizer(tpm.encoder_dir() / "tokenizer.json").get_vocab_size()
    out = lower_token_states(settings, np.arange(vocab))
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, out.numpy())
    tmp.replace(path)
    return out


@torch.inference_mode()
def token_table(model: finetune_top.TopLayer, lower: torch.Tensor, batch: int = 1024) -> np.ndarray:
    """``[vocab, hidden]`` float32: each token's lower states through the trained layer, mean-pooled
    over its three positions (as ``tsm.token_table`` pools the frozen encoder)."""
    model.eval()
    out = np.zeros((lower.shape[0], lower.shape[2]), np.float32)
    no_mask = torch.zeros(1, 1, 1, lower.shape[1])
    for start in range(0, lower.shape[0], batch):
        hidden = model.layer(lower[start : start + batch].float(), no_mask)
        out[start : start + batch] = hidden.mean(1).numpy()
    return out


class DistilledStaticCandidate:
    """``(train_idx, test_idx) -> probabilities`` for the LOSO harness: fine-tune the top layer on
    the training rows, build the static table from it, train the static heads on the same rows."""

    def __init__(
        self,
        rows: tpm.Rows,
        trainer: tsm.StaticTrainer,
        variant: tsm.StaticVariant,
        settings: finetune_top.Settings,
        cache_dir: Path,
        platt_folds: int = 2,
    ) -> None:
        torch.set_num_threads(1)
        self.rows, self.trainer, self.variant = rows, trainer, variant
        self.settings, self.platt_folds = settings, platt_folds
        self.states = finetune_top.LowerStates.cached(rows.texts, settings, cache_dir)
        self.lower = vocab_lower_states(settings, cache_dir)

    def fit(self, train_idx: np.ndarray) -> tuple[np.ndarray, tpm.Head]:
        """The weighted static table and calibrated head of a fit on ``train_idx``."""
        tuned = finetune_top.fit(
            self.states, self.rows.y, self.rows.sources, train_idx, self.settings
        )
        base = tsm.pca(token_table(tuned.model, self.lower), self.variant.dims)
        return self.trainer.fit(
            self.variant, train_idx, self.settings.seed, self.platt_folds, base=base
        )

    def __call__(self, train_idx: np.ndarray, test_idx: np.ndarray) -> np.ndarray:
        t0 = time.time()
        table, head = self.fit(train_idx)
        probs = self.trainer.predict(table, head, test_idx, self.variant.bow)
        print(
            f"  fold: {len(train_idx)} train / {len(test_idx)} scored ({time.time() - t0:.0f} s)",
            flush=True,
        )
        return probs


def describe(settings: finetune_top.Settings, variant: tsm.StaticVariant) -> dict[str, object]:
    return {"fine-tuning": finetune_top.describe(settings), "static": variant.name}
