"""Prompt-model candidates side by side, in one run: dev quality, leave-one-source-out, speed.

    python benchmarks/model_candidates.py --data ../shared/data/prompts_train.csv \
        --finetune-report benchmarks/results/model_finetune.json

Candidates: the shipped transformer (``builtin:prompt-minilm``), the static-embedding student
(``models/prompt-static``), cascades (static first, transformer only for prompts whose static
score is inside a band; the shipped default ``builtin:prompt-cascade`` keeps the larger score,
the older rule replaced it), the rules alone, a TF-IDF baseline, and, when a report from
``training/eval_finetune.py`` is given, the fine-tuned encoder (its numbers come from that run,
on the same seeded dev split and LOSO folds). Dev scores go through the real runtime
(``PromptModelDetector``); LOSO refits each head (and the static model's token weights) on the
other sources. Speed: prompts/s of each candidate, and the wall time of ``vgate scan --text`` from
process start to the first verdict (default model) for a prompt the cascade's first model decides
alone and for one it escalates. Writes benchmarks/results/model_candidates.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import train_prompt_model as tpm
import train_static_model as tsm
from model_quality import TfidfBaseline
from model_speed import startup_times, throughput, typical_prompts

from vgate.commands.eval import score_texts
from vgate.detectors.prompt_model import (
    CascadeDetector,
    PromptModelDetector,
    cascade_escalates,
    cascade_merge,
)
from vgate.detectors.rules import RulesDetector
from vgate.metrics import compute_metrics
from vgate.policy import load_policy
from vgate.resources import shipped_dir

RESULTS = Path(__file__).resolve().parent / "results"
OLD_CASCADE = ("replace", (0.1, 0.9))  # prompt-cascade-1, for comparison
SWEEP_LOWS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35)
SWEEP_HIGHS = (0.5, 0.6, 0.7, 0.8, 0.9)
DECIDED_ALONE = "a cat playing piano on a stage"
ESCALATED = "a knight in a battle"


def cascade_probs(
    first: np.ndarray, second: np.ndarray, band: tuple[float, float], combine: str = "replace"
) -> tuple[np.ndarray, float]:
    """Scores of a cascade (``CascadeDetector``'s rule, replayed on precomputed scores) and the
    share of prompts escalated."""
    escalate = cascade_escalates(first, band)
    merged = cascade_merge(first, second, combine)
    return np.where(escalate[:, None], merged, first), float(escalate.mean())


def cascade_sweep(
    y: np.ndarray,
    loso_first: np.ndarray,
    loso_second: np.ndarray,
    dev_first: np.ndarray,
    thresholds: np.ndarray,
) -> list[dict[str, Any]]:
    """Cascade rules (combine x band) by pooled leave-one-source-out F1, best (then cheapest)
    first, with the share of dev prompts each escalates (the speed cost; no dev labels used)."""
    out = []
    for combine in ("replace", "max"):
        for low in SWEEP_LOWS:
            for high in SWEEP_HIGHS:
                probs = cascade_probs(loso_first, loso_second, (low, high), combine)[0]
                binary = compute_metrics(y, probs, thresholds)["binary"]
                escalated = cascade_probs(dev_first, dev_first, (low, high))[1]
                out.append(
                    {"combine": combine, "band": [low, high], "dev_escalated": escalated}
                    | {k: binary[k] for k in ("precision", "recall", "f1")}
                )
    return sorted(out, key=lambda r: (-r["f1"], r["dev_escalated"]))


def loso_probs(rows: tpm.Rows, fit_predict: Any) -> np.ndarray:
    """Held-out probabilities of every row, each from the model trained without its source."""
    sources = np.array(rows.sources)
    out = np.zeros(rows.y.shape)
    for src in sorted(set(rows.sources)):
        te = np.flatnonzero(sources == src)
        out[te] = fit_predict(np.flatnonzero(sources != src), te)
    return out


def loso_report(rows: tpm.Rows, probs: np.ndarray) -> dict[str, Any]:
    sources = np.array(rows.sources)
    return {
        src: tpm.source_report(rows.y[sources == src], probs[sources == src])
        for src in sorted(set(rows.sources))
    }


def static_name(directory: Path) -> str:
    """A static model's label: its directory name and model version."""
    config = json.loads((directory / "config.json").read_text())
    return f"{directory.name} ({config.get('model_version', '?')})"


def static_variant(config: dict[str, Any]) -> Any:
    """The training variant of a static model from its config.json."""
    weighting = config["token_weighting"]
    sif_a = float(weighting.split("a=")[1].split(",")[0]) if weighting != "none" else 1e-3
    return tsm.StaticVariant(
        config["teacher_layers"],
        config["dims"],
        "none" if weighting == "none" else "sif",
        sif_a,
        config["head_C"],
        config.get("bag_of_tokens_weight", 0.0),
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--shipped", type=Path, default=shipped_dir("models") / "prompt-minilm")
    p.add_argument(
        "--static",
        type=Path,
        nargs="+",
        default=[shipped_dir("models") / "prompt-static"],
        help="static model directories (the first one is also tried as a cascade's first pass)",
    )
    p.add_argument("--finetune-report", type=Path, nargs="*", default=[])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dev-fraction", type=float, default=0.2)
    p.add_argument("--n", type=int, default=1024, help="prompts for the speed runs")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--startup-runs", type=int, default=7)
    p.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "vgate-train")
    p.add_argument("--out", type=Path, default=RESULTS / "model_candidates.json")
    args = p.parse_args(argv)

    rows = tpm.load_rows(args.data)
    train_idx, dev_idx = tpm.dev_split(rows, args.dev_fraction, args.seed)
    tr, dv = rows.subset(train_idx), rows.subset(dev_idx)
    th = tpm.THRESHOLDS
    res: dict[str, Any] = {"data": str(args.data), "n_dev": len(dev_idx), "seed": args.seed}
    shipped_cfg = json.loads((args.shipped / "config.json").read_text())
    default_cfg = json.loads((shipped_dir("models") / "prompt-cascade" / "config.json").read_text())
    cascades = {
        f"prompt-cascade {default_cfg['combine']} {tuple(default_cfg['band'])} (default)": (
            default_cfg["combine"],
            tuple(default_cfg["band"]),
        ),
        f"cascade {OLD_CASCADE[0]} {OLD_CASCADE[1]}": OLD_CASCADE,
    }

    # --- dev, through the runtime ----------------------------------------------------------------
    shipped = PromptModelDetector(args.shipped)
    statics = {static_name(d): PromptModelDetector(d) for d in args.static}
    p_shipped = score_texts(shipped, dv.texts)
    dev: dict[str, Any] = {"prompt-minilm (shipped)": compute_metrics(dv.y, p_shipped, th)}
    for name, det in statics.items():
        dev[name] = compute_metrics(dv.y, score_texts(det, dv.texts), th)
    first = next(iter(statics.values()))
    p_static = score_texts(first, dv.texts)
    for name, (combine, band) in cascades.items():
        probs, frac = cascade_probs(p_static, p_shipped, band, combine)
        dev[name] = {**compute_metrics(dv.y, probs, th), "escalated": frac}
    default_name = next(iter(cascades))
    p_default = score_texts(PromptModelDetector("builtin:prompt-cascade"), dv.texts)
    replay = cascade_probs(p_static, p_shipped, *cascades[default_name][::-1])[0]
    res["default_runtime_matches_replay"] = bool(np.allclose(p_default, replay, atol=1e-5))
    dev["rules (default policy)"] = compute_metrics(
        dv.y, score_texts(RulesDetector(load_policy("default")), dv.texts), th
    )
    tfidf = TfidfBaseline(args.seed).fit(tr.texts, tr.y)
    dev["tfidf-logreg"] = compute_metrics(dv.y, tfidf.predict(dv.texts), th)
    for path in args.finetune_report:
        ft = json.loads(path.read_text())
        if "dev" in ft["folds"].get("dev", {}):
            dev[f"fine-tuned {ft['variant']} ({ft['trained']})"] = ft["folds"]["dev"]["dev"]
    res["dev"] = dev
    print(f"dev: {len(dev_idx)} prompts")
    for name, m in dev.items():
        extra = f"  escalated {100 * m['escalated']:.1f}%" if "escalated" in m else ""
        print(f"  {name:44s} {tpm.summarize(m)}{extra}")

    # --- leave one source out --------------------------------------------------------------------
    tok = tpm.load_tokenizer(tpm.encoder_dir() / "tokenizer.json")
    layers, C = shipped_cfg["encoder_layers"], shipped_cfg["head_C"]
    emb = tpm.cached_embeddings(
        rows, [layers], args.work_dir / "cache", "frozen", lambda: (tpm.load_encoder(6), tok)
    )[layers]

    def minilm_fp(tr_i: np.ndarray, te_i: np.ndarray) -> np.ndarray:
        sub = rows.subset(tr_i)
        return tpm.fit_calibrated_head(emb[tr_i], sub.y, sub.labels, C, args.seed, 3).probs(
            emb[te_i]
        )

    trainer = tsm.StaticTrainer(rows, tsm.token_table([3, 6], args.work_dir / "cache"), tok)

    def tfidf_fp(tr_i: np.ndarray, te_i: np.ndarray) -> np.ndarray:
        sub = rows.subset(tr_i)
        return TfidfBaseline(args.seed).fit(sub.texts, sub.y).predict([rows.texts[i] for i in te_i])

    loso: dict[str, Any] = {}
    pooled: dict[str, Any] = {}

    def add_loso(name: str, probs: np.ndarray) -> None:
        loso[name] = loso_report(rows, probs)
        pooled[name] = compute_metrics(rows.y, probs, th)["binary"]

    l_minilm = loso_probs(rows, minilm_fp)
    add_loso(f"prompt-minilm L{layers} frozen (torch)", l_minilm)
    l_static = None
    for d, name in zip(args.static, statics, strict=True):
        variant = static_variant(json.loads((d / "config.json").read_text()))
        probs = loso_probs(rows, trainer.fit_predict(variant, args.seed))
        add_loso(f"{name} ({variant.name}, numpy)", probs)
        l_static = probs if l_static is None else l_static
    for name, (combine, band) in cascades.items():
        add_loso(name, cascade_probs(l_static, l_minilm, band, combine)[0])
    add_loso("tfidf-logreg", loso_probs(rows, tfidf_fp))
    for path in args.finetune_report:
        ft = json.loads(path.read_text())
        folds = {k: v["loso"] for k, v in ft["folds"].items() if "loso" in v}
        if folds:
            loso[f"fine-tuned {ft['variant']} ({ft['trained']})"] = folds
    res["loso"] = loso
    res["loso_pooled_binary"] = pooled
    res["cascade_sweep"] = cascade_sweep(rows.y, l_static, l_minilm, p_static, th)
    print("\ncascade rules by pooled LOSO F1 (escalated = share of dev prompts sent on):")
    for r in res["cascade_sweep"][:8]:
        print(
            f"  {r['combine']:8s} {r['band']}  escalated {r['dev_escalated']:.3f}  F1 {r['f1']:.4f}"
        )
    for name, rep in loso.items():
        print(f"\nLOSO {name}\n{tpm.format_loso(rep)}")
    print("\nLOSO pooled (every prompt scored by the model trained without its source):")
    for name, b in pooled.items():
        print(f"  {name:58s} P={b['precision']:.3f} R={b['recall']:.3f} F1={b['f1']:.3f}")

    # --- speed -----------------------------------------------------------------------------------
    texts = typical_prompts(args.data, args.shipped, args.n)
    res["speed"] = {
        "cpu_count": os.cpu_count(),
        "load_average_before": os.getloadavg(),
        "n_prompts": len(texts),
        "max_tokens": 77,
        "repeats": args.repeats,
        "prompts_per_s": {},
    }
    speed = res["speed"]["prompts_per_s"]
    detectors: dict[str, Any] = {"prompt-minilm (shipped)": shipped, **statics}
    for name, (combine, band) in cascades.items():
        detectors[name] = CascadeDetector(first, shipped, band, combine)
    p_speed = first.detect(texts).scores
    res["speed"]["escalated"] = {
        name: cascade_probs(p_speed, p_speed, band)[1] for name, (_, band) in cascades.items()
    }
    print(f"\nspeed: {len(texts)} prompts <= 77 tokens, best of {args.repeats}")
    for name, det in detectors.items():
        for call in (64, len(texts)):
            t0 = time.perf_counter()
            pps = throughput(det, texts, call, args.repeats)
            speed[f"{name}, calls of {call}"] = round(pps, 1)
            print(
                f"  {name:44s} calls of {call:5d}: {pps:9.1f} prompts/s "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    startup = {}
    for label, text in (("decided by the first model", DECIDED_ALONE), ("escalated", ESCALATED)):
        times = startup_times(args.startup_runs, text)
        startup[label] = {"text": text, "median_s": statistics.median(times), "runs_s": times}
        print(f"  vgate scan --text {text!r} ({label}): median {statistics.median(times):.3f} s")
    res["speed"]["startup_first_verdict"] = startup
    res["speed"]["load_average_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
