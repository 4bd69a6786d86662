"""Measuring the Latent Variable Defense on scored collections (``vgate probe eval`` uses it).

The defense replays the policy's stop rule with :func:`vgate.lvd.guard.first_stop`
on each prompt's scores and counts the denoising steps run with and without it, as in the NDSS
2025 study. Single-step threshold rules and first-η votes over the collected steps are compared
on the same scores.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from vgate.categories import CATEGORY_IDS
from vgate.lvd.guard import GuardRule, first_stop
from vgate.lvd.shards import LatentSet

SAME_ACCURACY = 0.01
"""Rules whose defense accuracy differs by less than this are ranked by compute saved."""


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
