"""Prompt-model candidates side by side, in one run: dev quality, leave-one-source-out, speed.

    python benchmarks/model_candidates.py --data ../shared/data/prompts_train.csv \
        --finetune-report benchmarks/results/model_finetune.json

Candidates: the shipped transformer (``builtin:prompt-minilm``), the static-embedding student
(``models/prompt-static``), cascades (static first, transformer only for prompts whose static
score is inside a band around the threshold), a TF-IDF baseline, and, when a report from
``training/eval_finetune.py`` is given, the fine-tuned encoder (its numbers come from that run,
on the same seeded dev split and LOSO folds). Dev scores go through the real runtime
(``PromptModelDetector``); LOSO refits each head (and the static model's token weights) on the
other sources. Writes benchmarks/results/model_candidates.json.
"""

from __future__ import annotations

import argparse
import json
import os
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
from model_speed import throughput, typical_prompts

from vgate.detectors.prompt_model import CascadeDetector, PromptModelDetector
from vgate.evaluate import compute_metrics, score_texts
from vgate.resources import shipped_dir

RESULTS = Path(__file__).resolve().parent / "results"
BANDS = ((0.2, 0.8), (0.1, 0.9))


def cascade_probs(first: np.ndarray, second: np.ndarray, band: tuple[float, float]):
    """Scores of a cascade: ``second`` where any of ``first``'s scores is inside ``band``."""
    escalate = ((first > band[0]) & (first < band[1])).any(axis=1)
    return np.where(escalate[:, None], second, first), float(escalate.mean())


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
    p.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "vgate-train")
    p.add_argument("--out", type=Path, default=RESULTS / "model_candidates.json")
    args = p.parse_args(argv)

    rows = tpm.load_rows(args.data)
    train_idx, dev_idx = tpm.dev_split(rows, args.dev_fraction, args.seed)
    tr, dv = rows.subset(train_idx), rows.subset(dev_idx)
    th = tpm.THRESHOLDS
    res: dict[str, Any] = {"data": str(args.data), "n_dev": len(dev_idx), "seed": args.seed}
    shipped_cfg = json.loads((args.shipped / "config.json").read_text())

    # --- dev, through the runtime ----------------------------------------------------------------
    shipped = PromptModelDetector(args.shipped)
    statics = {static_name(d): PromptModelDetector(d) for d in args.static}
    p_shipped = score_texts(shipped, dv.texts)
    dev: dict[str, Any] = {"prompt-minilm (shipped)": compute_metrics(dv.y, p_shipped, th)}
    for name, det in statics.items():
        dev[name] = compute_metrics(dv.y, score_texts(det, dv.texts), th)
    first_name, first = next(iter(statics.items()))
    p_static = score_texts(first, dv.texts)
    for band in BANDS:
        probs, frac = cascade_probs(p_static, p_shipped, band)
        dev[f"cascade {first_name} -> minilm {band}"] = {
            **compute_metrics(dv.y, probs, th),
            "escalated": frac,
        }
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

    l_minilm = loso_probs(rows, minilm_fp)
    loso = {f"prompt-minilm L{layers} frozen (torch)": loso_report(rows, l_minilm)}
    l_static = None
    for d, name in zip(args.static, statics, strict=True):
        variant = static_variant(json.loads((d / "config.json").read_text()))
        probs = loso_probs(rows, trainer.fit_predict(variant, args.seed))
        loso[f"{name} ({variant.name}, numpy)"] = loso_report(rows, probs)
        l_static = probs if l_static is None else l_static
    for band in BANDS:
        loso[f"cascade {first_name} -> minilm {band}"] = loso_report(
            rows, cascade_probs(l_static, l_minilm, band)[0]
        )
    loso["tfidf-logreg"] = loso_report(rows, loso_probs(rows, tfidf_fp))
    for path in args.finetune_report:
        ft = json.loads(path.read_text())
        folds = {k: v["loso"] for k, v in ft["folds"].items() if "loso" in v}
        if folds:
            loso[f"fine-tuned {ft['variant']} ({ft['trained']})"] = folds
    res["loso"] = loso
    for name, rep in loso.items():
        print(f"\nLOSO {name}\n{tpm.format_loso(rep)}")

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
    for band in BANDS:
        detectors[f"cascade {first_name} -> minilm {band}"] = CascadeDetector(first, shipped, band)
    p_speed = first.detect(texts).scores
    res["speed"]["escalated"] = {
        str(band): cascade_probs(p_speed, p_speed, band)[1] for band in BANDS
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
    res["speed"]["load_average_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
