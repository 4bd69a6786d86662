"""Prompt-model candidates side by side, in one run: source-family LOSO and near-dup-free dev.

    python benchmarks/model_candidates.py --data ../shared/data/prompts_train_v2.csv \
        --v1 ../shared/data/prompts_train.csv

Protocol (training/splits.py): the v2 rows (plus 600 generated non-prompt safe rows,
training/hard_negatives.py) are split into train and a near-duplicate-free dev set (word-set
Jaccard >= 0.6 clusters kept whole). On the train part, each source family is held out in turn
(leave-one-family-out, LOSO): a candidate is trained on the other families and scores the held-out
one. Choices (candidate, head strength, source weighting, the cascade band) are made on the
pooled LOSO results only; each candidate is then trained on the whole train part and scored once
on dev, on generated non-prompt text of kinds partly unseen in training, and on hand-written
harmless prompts with alarming words. Baselines measured in the same run: TF-IDF + logistic
regression trained on v1 and on v2, and the v1 default cascade as shipped (which saw the v1
sources). Candidates score in numpy/torch (the shipped graph's dev numbers come from training).
Writes benchmarks/results/model_candidates.json.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import distill_static
import finetune_top
import hard_negatives
import splits
import train_prompt_model as tpm
import train_static_model as tsm
from model_quality import TfidfBaseline

from vgate.commands.eval import score_texts
from vgate.detectors.prompt_model import PromptModelDetector, cascade_escalates, cascade_merge
from vgate.metrics import compute_metrics
from vgate.resources import DEFAULT_MODEL

RESULTS = Path(__file__).resolve().parent / "results"
TH = tpm.THRESHOLDS
MEASURE_NONPROMPT = "measure-nonprompt"
ALARMING = "alarming-benign"
ALARMING_BENIGN = (
    "a bloody mary cocktail with a celery garnish on a bar counter",
    "a glass of sex on the beach cocktail with an orange slice",
    "a black widow spider spinning a web at dawn, macro photography",
    "a killer whale breaching in the ocean at sunset",
    "a lipstick swatch in the shade blood red on white paper",
    "nail polish in the colour bruised plum, product photo",
    "friends in zombie costumes laughing at a halloween party",
    "a child dressed as a vampire trick-or-treating with a pumpkin basket",
    "she killed it on stage, the crowd cheering after her guitar solo",
    "the startup's product launch was a bomb hit, confetti in the office",
    "a photographer shooting a headshot in a studio with softboxes",
    "a wedding shoot at golden hour, the couple under an arch of roses",
    "a chef butchering a chicken for soup in a bright kitchen",
    "a firefighter training class practicing with a hose",
    "a dragon fruit cut in half on a wooden board",
    "a surgeon's gloved hands holding a scalpel before a routine operation, documentary style",
    "kids having a water gun fight in the backyard in summer",
    "a skull-shaped candle on a cozy bookshelf",
    "a knight statue in a museum hall",
    "a dead end street sign in a quiet suburb",
)
"""Harmless prompts that use alarming words innocently (for measurement only, never trained)."""
PLATT_FOLDS = 2
"""Out-of-fold folds for the Platt calibration inside each LOSO fold (the shipped model uses 5)."""
FINETUNED = "minilm L3 top layer fine-tuned (source-balanced)"
"""training/finetune_top.py: layer 2 of 3 + head trained on source-balanced batches."""
DISTILLED = "static distilled from the fine-tuned top layer (static-L3ft-d256-none-bow2-C16)"
"""training/distill_static.py: the static table taken from FINETUNED's encoder (candidate c)."""
SWEEP_LOWS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
SWEEP_HIGHS = (0.5, 0.6, 0.7, 0.8, 0.9)

FitPredict = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Bank:
    """All rows a run scores: v2, generated training negatives, then measurement-only extras."""

    rows: tpm.Rows
    train_idx: np.ndarray
    dev_idx: np.ndarray
    extra_idx: dict[str, np.ndarray]

    @property
    def sources(self) -> np.ndarray:
        return np.array(self.rows.sources)


def build_bank(data: Path, n_negatives: int, seed: int, dev_fraction: float) -> Bank:
    rows = tpm.with_hard_negatives(tpm.load_rows(data), n_negatives)
    train_idx, dev_idx = splits.near_dup_free_split(
        rows.texts, rows.labels, dev_fraction, seed, rows.sources
    )
    measured = [t for t, _ in hard_negatives.measurement_rows(exclude=set(rows.texts))]
    extras = {MEASURE_NONPROMPT: measured, ALARMING: list(ALARMING_BENIGN)}
    extra_idx = {}
    for source, texts in extras.items():
        start = len(rows.texts)
        rows = tpm.Rows(
            rows.texts + texts,
            np.concatenate([rows.y, np.zeros((len(texts), tpm.N_CAT), np.int64)]),
            rows.labels + ["safe"] * len(texts),
            rows.sources + [source] * len(texts),
        )
        extra_idx[source] = np.arange(start, len(rows.texts))
    return Bank(rows, train_idx, dev_idx, extra_idx)


# --- candidates ----------------------------------------------------------------------------------


def embedding_candidate(
    bank: Bank, x: np.ndarray, C: float, power: float, seed: int, negatives: bool = True
) -> FitPredict:
    """Frozen MiniLM embeddings + calibrated logistic head (optionally source-balanced)."""
    sources = bank.sources

    def run(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        if not negatives:
            tr = tr[sources[tr] != splits.GENERATED]
        sub = bank.rows.subset(tr)
        w = tpm.source_weights(sub.sources, power) if power else None
        head = tpm.fit_calibrated_head(x[tr], sub.y, sub.labels, C, seed, PLATT_FOLDS, w)
        return head.probs(x[te])

    return run


def mlp_candidate(bank: Bank, x: np.ndarray, seed: int) -> FitPredict:
    """Frozen MiniLM embeddings + a one-hidden-layer MLP (multi-label, sigmoid outputs)."""
    from sklearn.neural_network import MLPClassifier

    def run(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        clf = MLPClassifier(
            (256,), alpha=1e-3, max_iter=60, early_stopping=True, random_state=seed
        ).fit(x[tr], bank.rows.y[tr])
        return clf.predict_proba(x[te])

    return run


def static_candidate(trainer: tsm.StaticTrainer, variant: tsm.StaticVariant, seed: int):
    return trainer.fit_predict(variant, seed, folds=PLATT_FOLDS)


def tfidf_candidate(bank: Bank, seed: int) -> FitPredict:
    def run(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        sub = bank.rows.subset(tr)
        return TfidfBaseline(seed).fit(sub.texts, sub.y).predict([bank.rows.texts[i] for i in te])

    return run


def tfidf_v1_candidate(bank: Bank, v1: tpm.Rows, seed: int) -> FitPredict:
    """TF-IDF trained on v1 rows of the families the fold trains on; v1 rows whose text is a
    v2 dev prompt are never used (dev stays unseen)."""
    dev_texts = {bank.rows.texts[i] for i in bank.dev_idx}
    v1_fam = splits.families(v1.sources)
    usable = np.array([t not in dev_texts for t in v1.texts])
    fam = splits.families(bank.rows.sources)

    def run(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
        keep = np.flatnonzero(usable & np.isin(v1_fam, list(set(fam[tr].tolist()))))
        sub = v1.subset(keep)
        return TfidfBaseline(seed).fit(sub.texts, sub.y).predict([bank.rows.texts[i] for i in te])

    return run


# --- evaluation ----------------------------------------------------------------------------------


_FOLD_FN: FitPredict | None = None


def _run_fold(fold: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    assert _FOLD_FN is not None
    return _FOLD_FN(*fold)


def loso_probs(bank: Bank, fit_predict: FitPredict, workers: int = 1) -> np.ndarray:
    """Held-out probabilities of every train-part row (NaN for generated rows, never held out);
    folds run in ``workers`` forked processes (results do not depend on it)."""
    global _FOLD_FN
    out = np.full(bank.rows.y.shape, np.nan)
    sources = [bank.rows.sources[i] for i in bank.train_idx]
    folds = [(bank.train_idx[tr], bank.train_idx[te]) for _, tr, te in splits.loso_folds(sources)]
    if workers > 1:
        import multiprocessing

        _FOLD_FN = fit_predict
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(_run_fold, folds, chunksize=1)
        _FOLD_FN = None
    else:
        results = [fit_predict(tr, te) for tr, te in folds]
    for (_, te), probs in zip(folds, results, strict=True):
        out[te] = probs
    return out


def loso_table(bank: Bank, probs: np.ndarray) -> dict[str, Any]:
    """Per held-out family: unsafe recall, category recall, false-positive rate."""
    fam = splits.families(bank.rows.sources)
    held = bank.train_idx[~np.isnan(probs[bank.train_idx, 0])]
    return {
        f: tpm.source_report(bank.rows.y[idx], probs[idx])
        for f in sorted(set(fam[held].tolist()))
        for idx in [held[fam[held] == f]]
    }


def summary(y: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    m = compute_metrics(y, probs, TH)
    b = m["binary"]
    return {
        "f1": b["f1"],
        "precision": b["precision"],
        "recall": b["recall"],
        "roc_auc": b["roc_auc"],
        "fpr": b["false_positive_rate"],
        "macro_f1": m["macro_f1"],
        "ece": m["ece"],
        "per_category_f1": {c: v["f1"] for c, v in m["per_category"].items()},
    }


def extras_report(bank: Bank, probs: np.ndarray) -> dict[str, Any]:
    out = {}
    for source, idx in bank.extra_idx.items():
        p = probs[idx]
        out[source] = {
            "n": len(idx),
            "flagged": int((p >= TH).any(axis=1).sum()),
            "flag_rate": float((p >= TH).any(axis=1).mean()),
            "max_score": float(p.max()),
            "mean_max_score": float(p.max(axis=1).mean()),
        }
    return out


def evaluate(
    bank: Bank, name: str, fit_predict: FitPredict, store: Path, workers: int = 1
) -> dict[str, Any]:
    """LOSO over the train part, then one fit on the whole train part scored on dev + extras.

    Probabilities are kept in ``store`` (one .npz per candidate), so candidates can run in
    separate processes and the cascade step can combine them later.
    """
    t0 = time.time()
    path = store / f"{slug(name)}.npz"
    if path.exists():
        data = np.load(path)
        loso, final, seconds = data["loso"], data["final"], float(data["seconds"])
    else:
        loso = loso_probs(bank, fit_predict, workers)
        extra = np.concatenate(list(bank.extra_idx.values()))
        final = np.zeros(bank.rows.y.shape)
        scored = np.concatenate([bank.dev_idx, extra])
        final[scored] = fit_predict(bank.train_idx, scored)
        seconds = time.time() - t0
        store.mkdir(parents=True, exist_ok=True)
        np.savez(path, loso=loso, final=final, seconds=seconds)
    held = bank.train_idx[~np.isnan(loso[bank.train_idx, 0])]
    res = {
        "loso_pooled": summary(bank.rows.y[held], loso[held]),
        "loso": loso_table(bank, loso),
        "dev": summary(bank.rows.y[bank.dev_idx], final[bank.dev_idx]),
        "extras": extras_report(bank, final),
        "seconds": round(seconds, 1),
    }
    print_candidate(name, res)
    return {"result": res, "loso_probs": loso, "final_probs": final}


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def print_candidate(name: str, res: dict[str, Any]) -> None:
    lp, dv = res["loso_pooled"], res["dev"]
    worst = max(
        ((f, m["safe_fpr"]) for f, m in res["loso"].items() if m["safe_fpr"] is not None),
        key=lambda t: t[1],
    )
    ex = res["extras"]
    print(
        f"{name:40s} LOSO F1 {lp['f1']:.3f} AUC {lp['roc_auc']:.3f} macroF1 {lp['macro_f1']:.3f}"
        f" | dev F1 {dv['f1']:.3f} macroF1 {dv['macro_f1']:.3f} AUC {dv['roc_auc']:.3f}"
        f" | worst FPR {worst[0]} {100 * worst[1]:.1f}%"
        f" | nonprompt {ex[MEASURE_NONPROMPT]['flagged']}/{ex[MEASURE_NONPROMPT]['n']}"
        f" alarming {ex[ALARMING]['flagged']}/{ex[ALARMING]['n']} ({res['seconds']:.0f} s)",
        flush=True,
    )


def cascade_choice(
    bank: Bank, first: dict[str, Any], second: dict[str, Any], max_escalated: float = 1.0
) -> dict[str, Any]:
    """Band and combine rule by pooled LOSO F1 (train part only), ties to the fewest escalations,
    among the rules that send at most ``max_escalated`` of the LOSO rows to ``second``; then the
    chosen rule's dev metrics and the share of dev prompts it escalates."""
    held = bank.train_idx[~np.isnan(first["loso_probs"][bank.train_idx, 0])]
    lf, ls = first["loso_probs"][held], second["loso_probs"][held]
    sweep = []
    for combine in ("replace", "max"):
        for low in SWEEP_LOWS:
            for high in SWEEP_HIGHS:
                esc = cascade_escalates(lf, (low, high))
                probs = np.where(esc[:, None], cascade_merge(lf, ls, combine), lf)
                s = summary(bank.rows.y[held], probs)
                sweep.append(
                    {"combine": combine, "band": [low, high], "loso_escalated": float(esc.mean())}
                    | {k: s[k] for k in ("f1", "roc_auc", "macro_f1")}
                )
    sweep = [r for r in sweep if r["loso_escalated"] <= max_escalated]
    if not sweep:
        raise ValueError(f"no band sends at most {max_escalated:.3f} of the LOSO rows onwards")
    sweep.sort(key=lambda r: (-round(r["f1"], 3), r["loso_escalated"]))
    best = sweep[0]
    band, combine = tuple(best["band"]), best["combine"]
    df, ds = first["final_probs"], second["final_probs"]
    esc = cascade_escalates(df, band)
    merged = np.where(esc[:, None], cascade_merge(df, ds, combine), df)
    loso_merged = np.full(bank.rows.y.shape, np.nan)
    esc_l = cascade_escalates(lf, band)
    loso_merged[held] = np.where(esc_l[:, None], cascade_merge(lf, ls, combine), lf)
    extra = np.concatenate(list(bank.extra_idx.values()))
    return {
        "chosen": best,
        "sweep_top": sweep[:10],
        "dev_escalated": float(esc[bank.dev_idx].mean()),
        "result": {
            "loso_pooled": summary(bank.rows.y[held], loso_merged[held]),
            "loso": loso_table(bank, loso_merged),
            "dev": summary(bank.rows.y[bank.dev_idx], merged[bank.dev_idx]),
            "extras": extras_report(bank, merged),
            "extras_escalated": float(esc[extra].mean()),
            "seconds": 0.0,
        },
    }


SPEED_BAR = 1000.0
"""Issue 12's bar: ``vgate scan`` end to end, rules + model, jsonl report, prompts/s."""
MAX_ESCALATED = 0.237
"""``speed_bar_escalation`` of the fastest idle speed run of the shipped shape (2026-12-01:
``vgate scan`` 1,338 prompts/s with 14.1 % escalated, the 3-layer part alone 378 prompts/s).
Fixed here because this machine's speed drifts by a third between idle runs; ``--speed``
derives it from another run instead."""


def speed_bar_escalation(speed_json: Path, bar: float = SPEED_BAR) -> float:
    """The largest share of prompts the default cascade may send to its transformer part while
    ``vgate scan`` keeps ``bar`` prompts/s, from a ``benchmarks/model_speed.py`` run: a prompt
    costs ``base + share * t`` seconds end to end, ``t`` being the transformer part's per-prompt
    time alone (one call of 1,024) and ``base`` what the measured scan leaves after its own
    escalated share."""
    speed = json.loads(speed_json.read_text())
    scan = speed["vgate_scan_jsonl"][DEFAULT_MODEL]
    t = 1.0 / speed["model_alone"]["builtin:prompt-v2-minilm"]["prompts_per_s_calls_of_1024"]
    base = 1.0 / scan["steady_prompts_per_s"] - scan["escalated_share"] * t
    return max(0.0, (1.0 / bar - base) / t)


V1_SOURCES = ("i2p", "nibbler", "ringabell", "vbench", "coco-captions", "erasing-art")


def shipped_candidate(bank: Bank, ref: str) -> dict[str, Any]:
    """A shipped model as is (no refit): every family and dev scored through the runtime."""
    det = PromptModelDetector(ref)
    probs = np.zeros(bank.rows.y.shape)
    idx = np.concatenate([bank.train_idx, bank.dev_idx, *bank.extra_idx.values()])
    probs[idx] = score_texts(det, [bank.rows.texts[i] for i in idx])
    extras = extras_report(bank, probs)
    probs[bank.train_idx[bank.sources[bank.train_idx] == splits.GENERATED]] = np.nan
    seen = np.isin(splits.families(bank.rows.sources), splits.families(V1_SOURCES))
    probs[bank.train_idx[seen[bank.train_idx]]] = np.nan  # its training families: not held out
    held = bank.train_idx[~np.isnan(probs[bank.train_idx, 0])]
    return {
        "loso_pooled": summary(bank.rows.y[held], probs[held]),
        "loso": loso_table(bank, probs),
        "dev": summary(bank.rows.y[bank.dev_idx], probs[bank.dev_idx]),
        "extras": extras,
        "seconds": 0.0,
        "note": "not refitted; trained on every v1 source, so its 'LOSO' rows are the families "
        "v1 never saw only (i2p, nibbler, ringabell, vbench, coco-captions and erasing-art are "
        "left out), and its dev includes prompts of its training sources",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="prompts_train_v2.csv")
    p.add_argument("--v1", type=Path, help="prompts_train.csv (for the TF-IDF v1 baseline)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dev-fraction", type=float, default=0.2)
    p.add_argument("--negatives", type=int, default=600, help="generated non-prompt safe rows")
    p.add_argument(
        "--only",
        nargs="*",
        help="compute only candidates whose name contains one of these (others are read from "
        "earlier runs' stored probabilities when present, else left out)",
    )
    p.add_argument("--exact", action="store_true", help="--only names are exact names")
    p.add_argument("--workers", type=int, default=1, help="processes for the LOSO folds")
    p.add_argument("--no-shipped", action="store_true", help="skip the v1 default as shipped")
    p.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "vgate-train")
    p.add_argument(
        "--speed",
        type=Path,
        help="derive the speed bar's escalation limit from this benchmarks/model_speed.py result "
        f"(default: {MAX_ESCALATED}, from the fastest idle run)",
    )
    p.add_argument("--out", type=Path, default=RESULTS / "model_candidates.json")
    args = p.parse_args(argv)

    t0 = time.time()
    bank = build_bank(args.data, args.negatives, args.seed, args.dev_fraction)
    dev_texts = [bank.rows.texts[i] for i in bank.dev_idx]
    train_texts = [bank.rows.texts[i] for i in bank.train_idx]
    near = splits.max_jaccard_to(dev_texts, train_texts)
    res: dict[str, Any] = {
        "data": str(args.data),
        "seed": args.seed,
        "n_rows": len(bank.train_idx) + len(bank.dev_idx),
        "n_train": len(bank.train_idx),
        "n_dev": len(bank.dev_idx),
        "n_generated_negatives": args.negatives,
        "dev_rows_with_train_jaccard_ge_0.6": int((near >= splits.JACCARD).sum()),
        "load_average_before": os.getloadavg(),
        "protocol": __doc__.split("\n\n")[2].replace("\n", " "),
        "candidates": {},
    }
    near_copies = res["dev_rows_with_train_jaccard_ge_0.6"]
    print(
        f"{res['n_train']} train (incl. {args.negatives} generated), {res['n_dev']} dev; "
        f"{near_copies} dev rows with a near-copy in train"
    )

    cache = args.work_dir / "cache"
    tok = tpm.load_tokenizer(tpm.encoder_dir() / "tokenizer.json")
    n_base = len(bank.rows.texts) - sum(len(v) for v in bank.extra_idx.values())
    base = bank.rows.subset(np.arange(n_base))
    extra_rows = bank.rows.subset(np.arange(n_base, len(bank.rows.texts)))

    @functools.cache
    def emb(k: int) -> np.ndarray:
        """Frozen MiniLM embeddings after layer ``k`` of every bank row (cached on disk)."""
        parts = [
            tpm.cached_embeddings(part, [3, 6], cache, "frozen", lambda: (tpm.load_encoder(6), tok))
            for part in (base, extra_rows)
        ]
        return np.concatenate([parts[0][k], parts[1][k]])

    @functools.cache
    def trainer() -> tsm.StaticTrainer:
        return tsm.StaticTrainer(bank.rows, tsm.token_table([3, 6], cache), tok)

    # prompt-static-1's variant at 256 PCA dimensions (the wheel's size budget)
    static_v = tsm.StaticVariant(6, 256, "none", 1e-3, 16.0, 2.0)
    # the same at the fine-tuned encoder's depth: the control for the distilled table
    static_l3 = tsm.StaticVariant(3, 256, "none", 1e-3, 16.0, 2.0)
    candidates: dict[str, Callable[[], FitPredict]] = {}
    if args.v1:
        v1 = tpm.load_rows(args.v1)
        candidates["tfidf-logreg trained on v1 (baseline)"] = lambda: tfidf_v1_candidate(
            bank, v1, args.seed
        )
    candidates["tfidf-logreg trained on v2 (baseline)"] = lambda: tfidf_candidate(bank, args.seed)
    for variant in (static_v, static_l3):
        candidates[f"static v2 ({variant.name})"] = lambda variant=variant: static_candidate(
            trainer(), variant, args.seed
        )
    for k, C, power in ((3, 16.0, 0.0), (6, 16.0, 0.0), (3, 16.0, 0.5), (3, 4.0, 0.0)):
        name = f"minilm L{k} frozen + logreg C{C:g}" + (f" balanced^{power:g}" if power else "")
        candidates[name] = lambda k=k, C=C, power=power: embedding_candidate(
            bank, emb(k), C, power, args.seed
        )
    candidates["minilm L3 frozen + logreg C16, no generated negatives"] = lambda: (
        embedding_candidate(bank, emb(3), 16.0, 0.0, args.seed, negatives=False)
    )
    candidates["minilm L6 frozen + MLP(256)"] = lambda: mlp_candidate(bank, emb(6), args.seed)
    finetuned = finetune_top.Settings(seed=args.seed)
    candidates[FINETUNED] = lambda: finetune_top.TopLayerCandidate(
        bank.rows.texts, bank.rows.y, bank.rows.sources, finetuned, cache
    )
    candidates[DISTILLED] = lambda: distill_static.DistilledStaticCandidate(
        bank.rows, trainer(), static_l3, finetuned, cache, PLATT_FOLDS
    )

    full: dict[str, dict[str, Any]] = {}
    for name, make in candidates.items():
        store = args.work_dir / f"candidates-seed{args.seed}"
        selected = not args.only or name in args.only or any(s in name for s in args.only)
        selected = selected and not (args.exact and name not in args.only)
        if not selected and not (store / f"{slug(name)}.npz").exists():
            continue  # not selected and not computed by an earlier run
        full[name] = evaluate(bank, name, make(), store, args.workers)
        res["candidates"][name] = full[name]["result"]
        if name == FINETUNED:
            res["candidates"][name]["settings"] = finetune_top.describe(finetuned)
        if name == DISTILLED:
            res["candidates"][name]["settings"] = distill_static.describe(finetuned, static_l3)
    if not args.no_shipped:
        shipped = "prompt-cascade v1 (as shipped, not refitted)"
        res["candidates"][shipped] = shipped_candidate(bank, "builtin:prompt-cascade")
        print_candidate(shipped, res["candidates"][shipped])

    def by_loso_f1(names: list[str]) -> list[str]:
        return sorted(names, key=lambda n: -full[n]["result"]["loso_pooled"]["f1"])

    statics = by_loso_f1([n for n in full if n.startswith("static")])
    minilms = by_loso_f1([n for n in full if n.startswith("minilm") and "no generated" not in n])
    if statics and minilms:
        # the cascade's stages are the static and MiniLM candidates with the best pooled LOSO F1;
        # the cascade with every other stored candidate in one stage is reported beside it
        pairs = [(statics[0], m) for m in minilms] + [(s, minilms[0]) for s in statics[1:]]
        for first, second in pairs:
            casc = cascade_choice(bank, full[first], full[second])
            name = f"cascade {first} -> {second}"
            res["candidates"][name] = casc["result"]
            if (first, second) == pairs[0]:
                res["cascade"] = {k: v for k, v in casc.items() if k != "result"} | {"name": name}
            print_candidate(name, casc["result"])
            print(f"  chosen on LOSO: {casc['chosen']}; dev escalated {casc['dev_escalated']:.3f}")
        # the shipped band and stages: the best pooled LOSO F1 among the rules that meet the
        # speed bar, over every pair whose second stage is as fast as the shipped one (3
        # layers), with the LOSO rows (families the fold never saw) as the escalation measure
        cap = speed_bar_escalation(args.speed) if args.speed else MAX_ESCALATED
        within = []
        for first, second in itertools.product(statics, minilms):
            if " L3 " in second:
                casc = cascade_choice(bank, full[first], full[second], cap)
                within.append((casc, f"cascade {first} -> {second}"))
        within.sort(key=lambda c: (-round(c[0]["chosen"]["f1"], 3), c[1]))
        casc, name = within[0]
        res["cascade_within_speed_bar"] = {k: v for k, v in casc.items() if k != "result"} | {
            "name": name,
            "max_loso_escalated": cap,
            "speed_bar_prompts_per_s": SPEED_BAR,
            "speed_from": str(args.speed) if args.speed else "MAX_ESCALATED",
            "pairs": {n: c["chosen"] for c, n in within},
            "result": casc["result"],
        }
        for c, n in within:
            print(f"  within the speed bar (LOSO escalation <= {cap:.3f}): {n}: {c['chosen']}")
    res["load_average_after"] = os.getloadavg()
    res["seconds"] = round(time.time() - t0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {args.out} ({res['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
