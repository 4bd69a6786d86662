"""Prompt-model quality on the dev split, side by side with a TF-IDF baseline and the rules.

    python benchmarks/model_quality.py --data ../shared/data/prompts_train.csv

Uses the same seeded stratified dev split as training (the shipped model never saw it). The fp32
graph is the one training left in its work directory. Prints a table and writes
benchmarks/results/model_quality.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))

import train_prompt_model as tpm

from vgate.commands.eval import score_texts
from vgate.detectors.prompt_model import PromptModelDetector
from vgate.detectors.rules import RulesDetector
from vgate.metrics import compute_metrics
from vgate.policy import load_policy
from vgate.resources import shipped_dir

RESULTS = Path(__file__).resolve().parent / "results"


class TfidfBaseline:
    """Word 1-2-gram TF-IDF + one logistic regression per category (scikit-learn)."""

    name = "tfidf-logreg"

    def __init__(self, seed: int) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier

        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        self.clf = OneVsRestClassifier(LogisticRegression(C=10.0, max_iter=3000, random_state=seed))

    def fit(self, texts: list[str], y: np.ndarray) -> TfidfBaseline:
        self.clf.fit(self.vectorizer.fit_transform(texts), y)
        return self

    def predict(self, texts: list[str]) -> np.ndarray:
        return self.clf.predict_proba(self.vectorizer.transform(texts)).astype(np.float32)


def fp32_detector(model_dir: Path, fp32_graph: Path, tmp: Path) -> PromptModelDetector:
    """A detector over the fp32 graph with the shipped tokenizer and config."""
    d = tmp / "fp32"
    d.mkdir()
    for name in ("tokenizer.json", "config.json"):
        shutil.copyfile(model_dir / name, d / name)
    shutil.copyfile(fp32_graph, d / "model.onnx")
    return PromptModelDetector(d)


def row(name: str, m: dict[str, Any]) -> str:
    b = m["binary"]
    cats = " ".join(f"{v['f1']:.3f}" for v in m["per_category"].values())
    return (
        f"{name:22s} {b['precision']:.3f} {b['recall']:.3f} {b['f1']:.3f} "
        f"{b['roc_auc']:.4f} {m['ece']:.4f}  {cats}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--model", type=Path, default=shipped_dir("models") / "prompt-minilm")
    p.add_argument("--fp32", type=Path, help="fp32 graph (default: training's work dir)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dev-fraction", type=float, default=0.2)
    p.add_argument("--no-loso", action="store_true")
    args = p.parse_args(argv)

    config = json.loads((args.model / "config.json").read_text())
    variant = tpm.Variant(config["encoder_layers"], config["finetune_epochs"], config["head_C"])
    fp32 = (
        args.fp32 or Path(tempfile.gettempdir()) / "vgate-train" / variant.name / "model.fused.onnx"
    )
    rows = tpm.load_rows(args.data)
    train_idx, dev_idx = tpm.dev_split(rows, args.dev_fraction, args.seed)
    tr, dv = rows.subset(train_idx), rows.subset(dev_idx)
    thresholds = tpm.THRESHOLDS
    results: dict[str, Any] = {"data": str(args.data), "n_dev": len(dev_idx), "dev": {}}

    with tempfile.TemporaryDirectory() as tmp:
        detectors = {f"model-{config['precision']} (shipped)": PromptModelDetector(args.model)}
        if fp32.exists():
            detectors["model-fp32"] = fp32_detector(args.model, fp32, Path(tmp))
        detectors["rules (default policy)"] = RulesDetector(load_policy("default"))
        for name, det in detectors.items():
            results["dev"][name] = compute_metrics(dv.y, score_texts(det, dv.texts), thresholds)
    tfidf = TfidfBaseline(args.seed).fit(tr.texts, tr.y)
    results["dev"]["tfidf-logreg"] = compute_metrics(dv.y, tfidf.predict(dv.texts), thresholds)

    cats = " ".join(c[:5] for c in tpm.CATEGORY_IDS)
    print(f"dev split: {len(dev_idx)} prompts (seed {args.seed})")
    print(f"{'detector':22s} P     R     F1    AUC    ECE     F1 per category: {cats}")
    for name, m in results["dev"].items():
        print(row(name, m))

    if not args.no_loso:
        tok = tpm.load_tokenizer(tpm.encoder_dir() / "tokenizer.json")
        emb = tpm.cached_embeddings(
            rows,
            [variant.layers],
            Path(tempfile.gettempdir()) / "vgate-train" / "cache",
            "frozen",
            lambda: (tpm.load_encoder(6), tok),
        )[variant.layers]

        def model_fp(tr_i: np.ndarray, te_i: np.ndarray) -> np.ndarray:
            sub = rows.subset(tr_i)
            h = tpm.fit_calibrated_head(emb[tr_i], sub.y, sub.labels, variant.C, args.seed, 3)
            return h.probs(emb[te_i])

        def tfidf_fp(tr_i: np.ndarray, te_i: np.ndarray) -> np.ndarray:
            sub = rows.subset(tr_i)
            return (
                TfidfBaseline(args.seed)
                .fit(sub.texts, sub.y)
                .predict([rows.texts[i] for i in te_i])
            )

        results["loso"] = {
            f"model {variant.name} (frozen, torch)": tpm.leave_one_source_out(rows, model_fp),
            "tfidf-logreg": tpm.leave_one_source_out(rows, tfidf_fp),
        }
        for name, rep in results["loso"].items():
            print(f"\nLOSO {name}\n{tpm.format_loso(rep)}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "model_quality.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
