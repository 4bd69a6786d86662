"""The v1 default (``builtin:prompt-cascade``) against the v2 default (``builtin:prompt-v2``).

Both run through the default policy's gate (rules + model) on the near-duplicate-free dev split
of ``prompts_train_v2.csv`` (``training/splits.py``), restricted to the dev prompts that are not in
v1's file, so neither model trained on any of them. The v1 model never saw these prompts' sources at
all; the v2 model saw other (not near-duplicate) prompts of the same sources. That is the gain of
retraining on v2, not a leave-one-source-out figure (``model_candidates.py`` gives those).

    python benchmarks/model_v1_vs_v2.py --data ../shared/data/prompts_train_v2.csv \\
        --v1-data ../shared/data/prompts_train.csv

Writes ``benchmarks/results/model_v1_vs_v2.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.splits import near_dup_free_split  # noqa: E402
from vgate.commands.eval import run_eval  # noqa: E402

MODELS = ("builtin:prompt-cascade", "builtin:prompt-v2")
KEYS = ("precision", "recall", "f1", "roc_auc", "false_positive_rate")


def unseen_dev_rows(data: Path, v1_data: Path) -> list[dict[str, str]]:
    """Dev rows of the v2 split whose text is in no row of the v1 file."""
    rows = list(csv.DictReader(data.open(encoding="utf-8", newline="")))
    v1 = {r["text"].strip() for r in csv.DictReader(v1_data.open(encoding="utf-8", newline=""))}
    _, dev = near_dup_free_split(
        [r["text"] for r in rows], [r["label"] for r in rows], sources=[r["source"] for r in rows]
    )
    return [rows[i] for i in dev if rows[i]["text"].strip() not in v1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="prompts_train_v2.csv")
    parser.add_argument("--v1-data", type=Path, required=True, help="prompts_train.csv (v1)")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "model_v1_vs_v2.json"
    )
    args = parser.parse_args(argv)
    rows = unseen_dev_rows(args.data, args.v1_data)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        subset = Path(tmp) / "dev_not_in_v1.csv"
        with subset.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["id", "text", "label"])
            writer.writeheader()
            writer.writerows({k: r[k] for k in ("id", "text", "label")} for r in rows)
        for model in MODELS:
            print(f"== {model}")
            report = run_eval(subset, policy="default", model=model)
            results[model] = {
                "binary": {k: report["binary"].get(k) for k in KEYS},
                "macro_f1": report["macro_f1"],
                "ece": report["ece"],
                "per_category_f1": {c: m["f1"] for c, m in report["per_category"].items()},
            }
    out = {"prompts": len(rows), "subset": "near-dup-free dev split, texts not in v1", **results}
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
