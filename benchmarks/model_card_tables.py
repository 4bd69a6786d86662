"""Markdown tables for model cards and the README from benchmarks/results/model_candidates.json.

python benchmarks/model_card_tables.py [--families NAME ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def summary_table(cands: dict[str, Any]) -> str:
    lines = [
        "| candidate | LOSO F1 | LOSO ROC-AUC | LOSO macro-F1 | worst held-out safe FPR | "
        "dev F1 | dev macro-F1 | dev ECE | non-prompt text flagged | alarming-benign flagged |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in cands.items():
        lp, dv, ex = r["loso_pooled"], r["dev"], r["extras"]
        fprs = [(m["safe_fpr"], f) for f, m in r["loso"].items() if m["safe_fpr"] is not None]
        worst = max(fprs)
        lines.append(
            f"| {name} | {lp['f1']:.3f} | {lp['roc_auc']:.3f} | {lp['macro_f1']:.3f} | "
            f"{pct(worst[0])} % ({worst[1]}) | {dv['f1']:.3f} | {dv['macro_f1']:.3f} | "
            f"{dv['ece']:.3f} | {ex['measure-nonprompt']['flagged']}/"
            f"{ex['measure-nonprompt']['n']} | {ex['alarming-benign']['flagged']}/"
            f"{ex['alarming-benign']['n']} |"
        )
    return "\n".join(lines)


def family_table(cands: dict[str, Any], names: list[str]) -> str:
    head = "| held-out family | rows | unsafe | " + " | ".join(f"{n}: recall / FPR" for n in names)
    lines = [head + " |", "|---|---|---|" + "---|" * len(names)]
    families = list(cands[names[0]]["loso"])
    for f in families:
        m0 = cands[names[0]]["loso"][f]
        cells = []
        for n in names:
            m = cands[n]["loso"].get(f, {})
            cells.append(f"{pct(m.get('unsafe_recall'))} / {pct(m.get('safe_fpr'))}")
        lines.append(f"| {f} | {m0['n']} | {m0['n_unsafe']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def with_shipped_band(res: dict[str, Any]) -> dict[str, Any]:
    """The candidates, plus the shipped shape at the band chosen within the speed bar."""
    cands = dict(res["candidates"])
    if within := res.get("cascade_within_speed_bar"):
        low, high = within["chosen"]["band"]
        rule = f"{within['chosen']['combine']} in ({low:g}, {high:g})"
        name = f"**default as shipped**: {within['name']}, {rule}"
        cands[name] = within["result"]
    return cands


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", type=Path, default=RESULTS / "model_candidates.json")
    p.add_argument(
        "--families", nargs="*", help="candidates for the per-family table (exact names or parts)"
    )
    args = p.parse_args(argv)
    res = json.loads(args.results.read_text())
    cands = with_shipped_band(res)
    print(summary_table(cands))
    names = args.families or list(cands)[:3]
    print()
    exact = [n for n in names if n in cands]  # exact names, else every name containing one
    print(family_table(cands, exact or [n for n in cands if any(s in n for s in names)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
