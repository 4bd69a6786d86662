"""Fine-tune the top layer of the 3-layer MiniLM encoder with source-balanced batches.

The embeddings and the lower layers stay frozen, so their per-token output is computed once per
row and kept on disk (fp16, truncated at ``max_length`` tokens, keyed by the texts and every
setting that shapes it). Each fit then trains a fresh copy of the top layer, mean pooling and a
5-category linear head with BCE, on batches that draw every training source equally often (then
rows within a source), for a fixed number of steps. Per-category Platt scaling is fitted on the
logits of training rows that no batch drew (rows the gradient never saw; the held-out rows are
never drawn nor used). Every setting is fixed in advance: none is chosen on dev or on a held-out
family. Used as a candidate by ``benchmarks/model_candidates.py``.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import train_prompt_model as tpm
from torch import nn


@dataclass(frozen=True)
class Settings:
    """Everything a fit depends on (fixed in advance, not tuned on any split)."""

    layers: int = 3
    """Encoder depth (the shipped second stage's); only the last layer is trained."""
    max_length: int = 64
    steps: int = 150
    batch: int = 32
    lr: float = 1e-4
    """AdamW learning rate of the top layer (linear decay to 0)."""
    head_lr: float = 1e-3
    scale: float = 10.0
    """Pooled (unit-norm) embeddings are multiplied by this before the head, as in tpm.finetune."""
    platt_rows: int = 2000
    """At most this many never-drawn training rows calibrate each fit."""
    seed: int = 0

    @property
    def cut(self) -> int:
        """Number of frozen encoder layers below the trained one."""
        return self.layers - 1


# --- frozen lower-layer states --------------------------------------------------------------------


class LowerStates:
    """Per-token hidden states after the frozen layers: one fp16 block ``[tokens, hidden]`` per
    row, stored flat with row offsets."""

    def __init__(self, flat: np.ndarray, offsets: np.ndarray) -> None:
        self.flat = torch.from_numpy(flat)
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self, idx: np.ndarray) -> np.ndarray:
        return self.offsets[idx + 1] - self.offsets[idx]

    @classmethod
    def compute(cls, texts: Sequence[str], settings: Settings, batch: int = 64) -> LowerStates:
        encoder = tpm.load_encoder(settings.cut)
        tok = tpm.load_tokenizer(tpm.encoder_dir() / "tokenizer.json", settings.max_length)
        encodings = tok.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encodings], np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        flat = np.zeros((offsets[-1], encoder.config.hidden_size), np.float16)
        order = np.argsort(lengths, kind="stable")
        with torch.inference_mode():
            for start in range(0, len(order), batch):
                idx = order[start : start + batch]
                ids, mask = tpm.pad_batch([encodings[i] for i in idx])
                hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
                for row, i in enumerate(idx):
                    flat[offsets[i] : offsets[i + 1]] = hidden[row, : lengths[i]].numpy()
        return cls(flat, offsets)

    @classmethod
    def cached(cls, texts: Sequence[str], settings: Settings, cache_dir: Path) -> LowerStates:
        """``compute`` once per (texts, encoder, depth, max length, dtype); later calls load."""
        key = "\n".join(texts) + f"|{tpm.ENCODER_NAME}|cut{settings.cut}|len{settings.max_length}"
        key += f"|fp16|{(tpm.encoder_dir() / 'model.safetensors').stat().st_size}"
        path = cache_dir / f"lower-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
        if path.exists():
            data = np.load(path)
            return cls(data["flat"], data["offsets"])
        states = cls.compute(texts, settings)
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, flat=states.flat.numpy(), offsets=states.offsets)
        tmp.replace(path)
        return states

    def batch(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Padded float32 states ``[b, t, h]``, the token mask and BERT's additive mask."""
        lengths = self.lengths(idx)
        hidden = torch.zeros(len(idx), int(lengths.max()), self.flat.shape[1])
        mask = torch.zeros(len(idx), int(lengths.max()), dtype=torch.long)
        for row, (i, n) in enumerate(zip(idx, lengths, strict=True)):
            hidden[row, :n] = self.flat[self.offsets[i] : self.offsets[i + 1]].float()
            mask[row, :n] = 1
        additive = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        return hidden, mask, additive


# --- source-balanced batches ----------------------------------------------------------------------


def balanced_batches(
    sources: Sequence[str], idx: np.ndarray, steps: int, batch: int, seed: int
) -> Iterator[np.ndarray]:
    """``steps`` batches of rows from ``idx``: in each, every source of ``idx`` appears equally
    often (counts differ by at most one), then rows are drawn from a per-source shuffled queue
    that is reshuffled when used up. Rows outside ``idx`` are never drawn."""
    rng = np.random.default_rng(seed)
    src = np.array([sources[i] for i in idx])
    names = sorted(set(src.tolist()))
    pools = {s: idx[src == s] for s in names}
    queues: dict[str, list[int]] = {s: [] for s in names}
    for _ in range(steps):
        order = np.tile(rng.permutation(len(names)), -(-batch // len(names)))[:batch]
        rows = []
        for k in order:
            name = names[k]
            if not queues[name]:
                queues[name] = rng.permutation(pools[name]).tolist()
            rows.append(queues[name].pop())
        yield np.array(rows)


# --- model and fit --------------------------------------------------------------------------------


class TopLayer(nn.Module):
    """The encoder's last layer, mean pooling and a linear multi-label head (logits)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        encoder = tpm.load_encoder(settings.layers)
        encoder.set_attn_implementation("eager")
        self.layer = copy.deepcopy(encoder.encoder.layer[settings.cut])
        self.head = nn.Linear(encoder.config.hidden_size, tpm.N_CAT)
        self.scale = settings.scale

    def forward(self, states: LowerStates, idx: np.ndarray) -> torch.Tensor:
        hidden, mask, additive = states.batch(idx)
        return self.head(tpm.mean_pool(self.layer(hidden, additive), mask) * self.scale)

    @torch.inference_mode()
    def logits(self, states: LowerStates, idx: np.ndarray, batch: int = 64) -> np.ndarray:
        """Logits of rows ``idx`` in that order (evaluation mode, length-sorted batches)."""
        self.eval()
        out = np.zeros((len(idx), tpm.N_CAT), np.float32)
        order = np.argsort(states.lengths(idx), kind="stable")
        for start in range(0, len(order), batch):
            pos = order[start : start + batch]
            out[pos] = self(states, idx[pos]).numpy()
        return out


@dataclass
class Fit:
    """A trained top layer + head, its Platt parameters and what training saw."""

    model: TopLayer
    a: np.ndarray
    c: np.ndarray
    losses: list[float]
    drawn: np.ndarray

    def probs(self, states: LowerStates, idx: np.ndarray) -> np.ndarray:
        z = self.model.logits(states, idx).astype(np.float64)
        return 1.0 / (1.0 + np.exp(-(z * self.a + self.c)))


def platt(logits: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-category Platt scaling; a category with one class among the rows stays uncalibrated."""
    return tpm.fit_platt(logits, y, [j for j in range(tpm.N_CAT) if 0 < y[:, j].sum() < len(y)])


def fit(
    states: LowerStates,
    y: np.ndarray,
    sources: Sequence[str],
    train_idx: np.ndarray,
    settings: Settings,
) -> Fit:
    """Train on source-balanced batches from ``train_idx``, then calibrate on never-drawn rows."""
    torch.manual_seed(settings.seed)
    model = TopLayer(settings)
    opt = torch.optim.AdamW(
        [
            {"params": model.layer.parameters(), "lr": settings.lr},
            {"params": model.head.parameters(), "lr": settings.head_lr},
        ],
        weight_decay=0.01,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / settings.steps))
    target = torch.from_numpy(y.astype(np.float32))
    losses, drawn = [], set()
    model.train()
    for b in balanced_batches(sources, train_idx, settings.steps, settings.batch, settings.seed):
        loss = nn.functional.binary_cross_entropy_with_logits(model(states, b), target[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        drawn.update(b.tolist())
    unseen = np.setdiff1d(train_idx, np.fromiter(drawn, np.int64))
    rng = np.random.default_rng(settings.seed)
    calib = np.sort(rng.permutation(unseen)[: settings.platt_rows])
    a, c = platt(model.logits(states, calib), y[calib])
    return Fit(model, a, c, losses, np.sort(list(drawn)))


class TopLayerCandidate:
    """``(train_idx, test_idx) -> probabilities`` over one set of rows, for the LOSO harness."""

    def __init__(
        self,
        texts: Sequence[str],
        y: np.ndarray,
        sources: Sequence[str],
        settings: Settings,
        cache_dir: Path,
    ) -> None:
        torch.set_num_threads(1)
        t0 = time.time()
        self.states = LowerStates.cached(texts, settings, cache_dir)
        self.y, self.sources, self.settings = y, list(sources), settings
        print(f"  lower-layer states of {len(texts)} rows ready ({time.time() - t0:.0f} s)")

    def __call__(self, train_idx: np.ndarray, test_idx: np.ndarray) -> np.ndarray:
        t0 = time.time()
        result = fit(self.states, self.y, self.sources, train_idx, self.settings)
        probs = result.probs(self.states, test_idx)
        first, last = np.mean(result.losses[:10]), np.mean(result.losses[-10:])
        print(
            f"  fold: {len(train_idx)} train / {len(test_idx)} scored, loss {first:.3f} -> "
            f"{last:.3f}, {len(result.drawn)} rows drawn ({time.time() - t0:.0f} s)",
            flush=True,
        )
        return probs


def describe(settings: Settings) -> dict[str, object]:
    return asdict(settings) | {"trained": f"layer {settings.cut} of {settings.layers} + head"}
