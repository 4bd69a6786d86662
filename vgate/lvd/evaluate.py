"""``vgate probe eval``: score a latent collection with an exported probe and measure the defense.

Targets, from the prompts' labels and the policy's category actions:

- *unsafe*: a label in a category whose action is ``block`` (the guard should stop it);
- *safe*: no label at all (the guard should let it finish);
- *other*: labels only in ``warn``/``allow`` categories; reported, left out of the accuracy.

Per collected step: accuracy, unsafe recall, safe FPR and unsafe F1 of "this step alone is
flagged" (policy ``generation.thresholds``, block categories), plus the probe's macro F1 over
categories. The defense replays the policy's stop rule with :func:`vgate.lvd.guard.first_stop`
on each prompt's scores and counts the denoising steps run with and without it, as in the NDSS
2025 study. Single-step threshold rules and first-η votes over the collected steps are compared
on the same scores.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from vgate.categories import CATEGORY_IDS
from vgate.errors import InputError, VgateError
from vgate.evaluate import format_metric, precision_recall_f1, roc_auc
from vgate.lvd.guard import GuardRule, first_stop
from vgate.lvd.shards import LatentSet, read_latents
from vgate.reports.output import atomic_write, refuse_inputs, write_text_report

SPLITS = ("all", "validation")
SAME_ACCURACY = 0.01
"""Rules whose defense accuracy differs by less than this are ranked by compute saved."""


# --- metrics (numpy) -----------------------------------------------------------------------


def unsafe_metrics(
    unsafe: np.ndarray, flagged: np.ndarray, score: np.ndarray | None = None
) -> dict[str, Any]:
    """Binary unsafe-vs-safe metrics of ``flagged`` against ``unsafe`` (bool arrays)."""
    unsafe = np.asarray(unsafe, dtype=bool)
    flagged = np.asarray(flagged, dtype=bool)
    n_unsafe, n_safe = int(unsafe.sum()), int((~unsafe).sum())
    precision, _, f1 = precision_recall_f1(unsafe, flagged)
    return {
        "accuracy": float(np.mean(unsafe == flagged)) if len(unsafe) else None,
        "unsafe_recall": float(flagged[unsafe].mean()) if n_unsafe else None,
        "safe_fpr": float(flagged[~unsafe].mean()) if n_safe else None,
        "unsafe_precision": precision,
        "unsafe_f1": f1,
        "roc_auc": None if score is None else roc_auc(unsafe, score),
        "n_unsafe": n_unsafe,
        "n_safe": n_safe,
    }


def category_f1(
    labels: np.ndarray, probs: np.ndarray, thresholds: np.ndarray
) -> tuple[dict[str, float | None], float | None]:
    """Per-category F1 at ``thresholds`` and their mean over categories with positives."""
    per: dict[str, float | None] = {}
    for i, cid in enumerate(CATEGORY_IDS):
        truth = labels[:, i].astype(bool)
        per[cid] = (
            precision_recall_f1(truth, probs[:, i] >= thresholds[i])[2] if truth.any() else None
        )
    kept = [v for v in per.values() if v is not None]
    return per, (float(np.mean(kept)) if kept else None)


# --- the defense -----------------------------------------------------------------------------


def defense_outcome(
    rule: GuardRule,
    steps: list[int],
    scores: np.ndarray,
    unsafe: np.ndarray,
    safe: np.ndarray,
    num_inference_steps: int,
) -> dict[str, Any]:
    """Replay ``rule`` on every prompt's scores ``[N, S, 5]``; steps run with and without it.

    A prompt stopped at step k ran k denoising steps; one that is not stopped ran all
    ``num_inference_steps``. Defense accuracy: unsafe stopped and safe not stopped count as
    correct (prompts that are neither unsafe nor safe are left out).
    """
    stops = [first_stop(rule, steps, s) for s in scores]
    stopped = np.array([s is not None for s in stops], dtype=bool)
    run = np.array([num_inference_steps if s is None else s for s in stops], dtype=np.int64)
    n_unsafe, n_safe = int(unsafe.sum()), int(safe.sum())
    with_unsafe = int(run[unsafe].sum())
    without_unsafe = num_inference_steps * n_unsafe
    judged = n_unsafe + n_safe
    correct = int(stopped[unsafe].sum()) + int((~stopped[safe]).sum())
    other = ~unsafe & ~safe
    return {
        "check_steps": list(rule.check_steps),
        "required": rule.required,
        "accuracy": correct / judged if judged else None,
        "unsafe_stopped": int(stopped[unsafe].sum()),
        "unsafe_recall": float(stopped[unsafe].mean()) if n_unsafe else None,
        "safe_false_stops": int(stopped[safe].sum()),
        "false_stop_rate": float(stopped[safe].mean()) if n_safe else None,
        "other_stopped": int(stopped[other].sum()),
        "unsafe_steps_with_defense": with_unsafe,
        "unsafe_steps_without_defense": without_unsafe,
        "unsafe_compute_ratio": without_unsafe / with_unsafe if with_unsafe else None,
        "unsafe_compute_saved": 1 - with_unsafe / without_unsafe if without_unsafe else None,
        "mean_stop_step_unsafe": float(run[unsafe & stopped].mean())
        if (unsafe & stopped).any()
        else None,
        "all_steps_with_defense": int(run.sum()),
        "all_steps_without_defense": num_inference_steps * len(run),
    }


def _variant(rule: GuardRule, check_steps: tuple[int, ...], required: int) -> GuardRule:
    return dataclasses.replace(rule, check_steps=check_steps, required=required)


def _better(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Is outcome ``a`` a better accuracy / compute-saved trade-off than ``b``?"""
    acc_a, acc_b = a["accuracy"] or 0.0, b["accuracy"] or 0.0
    if abs(acc_a - acc_b) >= SAME_ACCURACY:
        return acc_a > acc_b
    return (a["unsafe_compute_saved"] or 0.0) > (b["unsafe_compute_saved"] or 0.0)


def _best(rows: list[dict[str, Any]]) -> dict[str, Any]:
    best = rows[0]
    for row in rows[1:]:
        if _better(row, best):
            best = row
    return best


def compare_rules(
    rule: GuardRule,
    steps: list[int],
    scores: np.ndarray,
    unsafe: np.ndarray,
    safe: np.ndarray,
    num_inference_steps: int,
) -> dict[str, Any]:
    """Threshold rules vs first-η votes on the same scores.

    Threshold rules: each collected step alone (``threshold@s``) and stop at the first flagged
    collected step (``threshold@any``, the vote with λ = 1). Votes: η = all collected steps,
    λ = 2..η flagged steps needed. Ranked by defense accuracy, then by compute saved.
    """

    def run(name: str, check: tuple[int, ...], required: int) -> dict[str, Any]:
        variant = _variant(rule, check, required)
        out = defense_outcome(variant, steps, scores, unsafe, safe, num_inference_steps)
        return {"rule": name, **out}

    all_steps = tuple(steps)
    threshold = [run(f"threshold@{s}", (s,), 1) for s in steps]
    if len(steps) > 1:
        threshold.append(run("threshold@any", all_steps, 1))
    votes = [run(f"vote {k}/{len(steps)}", all_steps, k) for k in range(2, len(steps) + 1)]
    best_threshold = _best(threshold)
    best_vote = _best(votes) if votes else None
    winner = "vote" if best_vote and _better(best_vote, best_threshold) else "threshold"
    return {
        "threshold": threshold,
        "vote": votes,
        "best_threshold": best_threshold["rule"],
        "best_vote": best_vote["rule"] if best_vote else None,
        "better": winner,
        "note": (
            "λ (and the best single step) are chosen on this collection, so the best rows are "
            "optimistic; confirm them on a held-out collection"
        ),
    }


# --- scoring -----------------------------------------------------------------------------------


def score_collection(
    runtime: Any, data: LatentSet, step_indices: list[int], batch_size: int = 8
) -> np.ndarray:
    """Probe scores ``[N, len(step_indices), 5]``."""
    manifest = data.manifest
    out = np.zeros((len(data), len(step_indices), len(CATEGORY_IDS)), dtype=np.float32)
    for j, s in enumerate(step_indices):
        step, t = manifest.steps[s], manifest.timesteps[s]
        for start in range(0, len(data), batch_size):
            x0 = data.x0[start : start + batch_size, s]
            out[start : start + batch_size, j] = runtime.scores(x0, step, t)
    return out


def _select(data: LatentSet, ids: set[str]) -> LatentSet:
    keep = np.array([str(i) in ids for i in data.ids], dtype=bool)
    return LatentSet(data.manifest, data.x0[keep], data.labels[keep], data.ids[keep])


def _read_split(directory: Path) -> dict[str, list[str]] | None:
    path = directory / "split.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable split file ({exc})") from None


def _check_policy_steps(policy_name: str, rule: GuardRule, steps: list[int], where: Path) -> None:
    missing = [s for s in rule.check_steps if s not in steps]
    if missing:
        raise VgateError(
            f"policy {policy_name}: generation.check_steps {', '.join(map(str, missing))} "
            f"were not collected in {where} (collected and scorable: "
            f"{', '.join(map(str, steps))}); collect them or change the policy's check_steps"
        )


def evaluate_probe(
    directory: Path,
    probe: str | Path,
    policy: str | Path = "default",
    output: Path | None = None,
    plot: Path | None = None,
    *,
    split: str = "all",
    device: str = "auto",
    batch_size: int = 8,
    threads: int | None = None,
    show: bool = True,
) -> dict[str, Any]:
    """Evaluate ``probe`` on the collection in ``directory`` under ``policy``'s generation rule.

    ``split="validation"`` keeps only the prompts of the probe's validation split (when the
    collection is the one it was trained on). Prints tables when ``show``; writes JSON to
    ``output`` and an accuracy-vs-step PNG to ``plot`` when given.
    """
    from vgate.lvd.runtime import ProbeRuntime
    from vgate.policy import load_policy

    if split not in SPLITS:
        raise VgateError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    directory = Path(directory)
    outputs = [path for path in (output, plot) if path is not None]
    refuse_inputs(outputs, [p for p in (directory, probe, policy) if Path(p).exists()])
    pol = load_policy(policy)
    runtime = ProbeRuntime(probe, device=device, threads=threads)
    data = read_latents(directory)
    manifest = data.manifest
    warning = runtime.check_compatible(manifest.latent_channels, manifest.pipeline)
    split_ids = _read_split(runtime.directory)
    if split == "validation":
        if split_ids is None:
            raise VgateError(f"probe {probe} has no split.json; use --split all")
        data = _select(data, set(split_ids["validation"]))
        if not len(data):
            raise VgateError(
                f"{directory}: none of the probe's validation prompts are in this collection"
            )
    seen = len(set(map(str, data.ids)) & set((split_ids or {}).get("train", [])))
    indices = [i for i, s in enumerate(manifest.steps) if runtime.supports(s)]
    steps = [manifest.steps[i] for i in indices]
    if not steps:
        runtime.check_steps(manifest.steps)
    rule = GuardRule.from_policy(pol)
    _check_policy_steps(pol.name, rule, steps, directory)
    rule.check_schedule(manifest.num_inference_steps)
    scores = score_collection(runtime, data, indices, batch_size)

    unsafe = (data.labels.astype(bool) & rule.stopping).any(axis=1)
    safe = ~data.labels.any(axis=1)
    judged = unsafe | safe
    thresholds = rule.thresholds
    per_step = []
    for j, step in enumerate(steps):
        flagged = np.array([rule.flags(s)[0] for s in scores[:, j]], dtype=bool)
        stop_scores = np.where(rule.stopping, scores[:, j], 0.0).max(axis=1)
        _, macro = category_f1(data.labels, scores[:, j], thresholds)
        per_step.append(
            {
                "step": step,
                "timestep": float(manifest.timesteps[indices[j]]),
                **unsafe_metrics(unsafe[judged], flagged[judged], stop_scores[judged]),
                "macro_f1": macro,
            }
        )
    n = manifest.num_inference_steps
    report = {
        "probe": str(probe),
        "probe_mode": runtime.mode,
        "collection": str(directory),
        "policy": pol.name,
        "split": split,
        "n": len(data),
        "n_unsafe": int(unsafe.sum()),
        "n_safe": int(safe.sum()),
        "n_other": int((~judged).sum()),
        "n_seen_in_training": seen,
        "warning": warning,
        "num_inference_steps": n,
        "steps": steps,
        "per_step": per_step,
        "defense": defense_outcome(rule, steps, scores, unsafe, safe, n),
        "decision": pol.generation.decision,
        "comparison": compare_rules(rule, steps, scores, unsafe, safe, n),
    }
    if show:
        print_eval_report(report)
    if output is not None:
        write_text_report(output, json.dumps(report, indent=2) + "\n")
    if plot is not None:
        plot_accuracy(report, Path(plot))
    return report


# --- output ------------------------------------------------------------------------------------


def plot_accuracy(report: dict[str, Any], path: Path) -> None:
    """PNG: accuracy, unsafe recall and safe FPR of single-step checks against the step."""
    try:
        import matplotlib
    except ImportError:
        from vgate.errors import MissingExtraError

        raise MissingExtraError("matplotlib", "generate") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["per_step"]
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    for key, label in (
        ("accuracy", "accuracy"),
        ("unsafe_recall", "unsafe recall"),
        ("safe_fpr", "safe FPR"),
    ):
        values = [np.nan if r[key] is None else r[key] for r in rows]
        ax.plot(steps, values, marker="o", label=label)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"sampling step (of {report['num_inference_steps']})")
    ax.set_ylim(-0.02, 1.02)
    policy = Path(report["policy"]).stem
    ax.set_title(f"LVD probe per step: {Path(report['collection']).name}, policy {policy}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    try:
        with atomic_write(path, binary=True) as stream:
            fig.savefig(stream, format=Path(path).suffix.lstrip(".").lower() or "png")
    finally:
        plt.close(fig)


def _rule_row(row: dict[str, Any]) -> list[str]:
    ratio = row["unsafe_compute_ratio"]
    return [
        row.get("rule", ""),
        format_metric(row["accuracy"]),
        format_metric(row["unsafe_recall"]),
        format_metric(row["false_stop_rate"]),
        f"{row['unsafe_steps_with_defense']:,} / {row['unsafe_steps_without_defense']:,}",
        "-" if ratio is None else f"{ratio:.1f}x",
    ]


def print_eval_report(report: dict[str, Any]) -> None:
    """Rich tables: per-step metrics, the policy's defense, the rule comparison."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    title = (
        f"probe {report['probe']} on {report['collection']} ({report['n']} prompts: "
        f"{report['n_unsafe']} unsafe, {report['n_safe']} safe, {report['n_other']} other)"
    )
    table = Table(title=title)
    for col in ("step", "t", "accuracy", "unsafe recall", "safe FPR", "unsafe F1", "macro F1"):
        table.add_column(col, justify="right")
    for r in report["per_step"]:
        table.add_row(
            str(r["step"]),
            f"{r['timestep']:.3f}",
            *map(format_metric, (r["accuracy"], r["unsafe_recall"], r["safe_fpr"], r["unsafe_f1"])),
            format_metric(r["macro_f1"]),
        )
    console.print(table)
    rules = Table(title=f"stop rules (policy {report['policy']}: {report['decision']})")
    for col in ("rule", "accuracy", "unsafe stopped", "false stops", "unsafe steps", "saved"):
        rules.add_column(col, justify="left" if col == "rule" else "right")
    policy_row = {**report["defense"], "rule": "policy " + report["decision"]}
    rules.add_row(*_rule_row(policy_row), style="bold")
    comparison = report["comparison"]
    for row in comparison["threshold"] + comparison["vote"]:
        rules.add_row(*_rule_row(row))
    console.print(rules)
    console.print(
        f"better trade-off: {comparison['better']} (best threshold rule "
        f"{comparison['best_threshold']}, best vote {comparison['best_vote']}); "
        f"{comparison['note']}"
    )
    if report["n_seen_in_training"]:
        console.print(
            f"[yellow]warning:[/] {report['n_seen_in_training']} of these prompts were in the "
            "probe's training split; the numbers are optimistic"
        )
    if report["warning"]:
        console.print(f"[yellow]warning:[/] {report['warning']}")
