"""``vgate probe train`` and ``vgate probe eval``: the glue between the CLI and :mod:`vgate.lvd`.

``probe eval`` targets, from the prompts' labels and the policy's category actions:

- *unsafe*: a label in a category whose action is ``block`` (the guard should stop it);
- *safe*: no label at all (the guard should let it finish);
- *other*: labels only in ``warn``/``allow`` categories; reported, left out of the accuracy.

Per collected step: accuracy, unsafe recall, safe FPR and unsafe F1 of "this step alone is
flagged" (policy ``generation.thresholds``, block categories), plus the probe's macro F1 over
categories. The defense replays the policy's stop rule (:mod:`vgate.lvd.evaluate`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from vgate.errors import InputError, VgateError
from vgate.lvd.evaluate import compare_rules, defense_outcome, score_collection
from vgate.lvd.guard import GuardRule
from vgate.lvd.shards import LatentSet, read_latents
from vgate.lvd.train import train_probe
from vgate.metrics import category_f1, format_metric, unsafe_metrics


def print_train_report(report: dict[str, Any]) -> None:
    """Per-step validation metrics as a rich table on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"probe validation ({report['mode']}, {report['selected_by']})")
    for col in ("step", "t", "accuracy", "unsafe recall", "safe FPR", "ROC-AUC", "macro F1"):
        table.add_column(col, justify="right")
    for m in report["validation"]["per_step"]:
        table.add_row(
            str(m["step"]),
            f"{m['timestep']:.3f}",
            *map(format_metric, (m["accuracy"], m["unsafe_recall"], m["safe_fpr"], m["roc_auc"])),
            format_metric(m["macro_f1"]),
        )
    console = Console()
    console.print(table)
    for name, m in report["modes"].items():
        console.print(
            f"{name}: mean macro F1 {m['mean_macro_f1']:.3f}, mean accuracy "
            f"{m['mean_accuracy']:.3f} ({m['seconds']:.1f} s)"
        )


def run_train(directory: Path, out: Path, **options: Any) -> dict[str, Any]:
    """``vgate probe train``: train, write ``out``, print the validation table."""
    report = train_probe(directory, out, **options)
    print_train_report(report)
    return report


SPLITS = ("all", "validation")


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

    unsafe = np.asarray((data.labels.astype(bool) & rule.stopping).any(axis=1))
    safe = np.asarray(~data.labels.any(axis=1))
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
        _write(output, json.dumps(report, indent=2) + "\n")
    if plot is not None:
        plot_accuracy(report, Path(plot))
    return report


def _write(path: Path, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise VgateError(f"{path}: cannot write ({exc.strerror or exc})") from None


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
        fig.savefig(path)
    except OSError as exc:
        raise VgateError(f"{path}: cannot write the plot ({exc.strerror or exc})") from None
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
