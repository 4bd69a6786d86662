"""LVD evidence on the small text-to-video model trained here (benchmarks/lvd_trained/weights).

    nice -n 5 python -m benchmarks.lvd_trained.run

Everything goes through vgate's own code: ``collect_latents`` (``vgate probe collect``),
``train_probe`` (``vgate probe train``), ``evaluate_probe`` (``vgate probe eval``),
``generate`` (``vgate generate --guarded``) and the prompt ``Gate`` (``vgate scan``).

1. Two disjoint sets of held-out prompts (never seen by the video model): set A trains the
   probe (its own validation split picks the policy's check step), set B tests it.
2. x̂₀ is collected at every one of the 50 DDIM steps for both sets.
3. The probe is trained on A; per-step accuracy, the single-step rule and the first-η vote are
   evaluated on B (JSON + PNG).
4. Compute: guarded generation (prompt gate + latent gate) runs on a subset of B, counting
   denoiser calls, against plain generation's calls (measured in the collection of B, which
   ran all 50 steps).
5. Side by side on B: a prompt-only filter (vgate's prompt gate, rules + the default model) and an
   output-only filter (the frame classifier on the final video, decoded from the step-50 x̂₀).

Writes benchmarks/results/lvd_trained.json and benchmarks/results/lvd_trained_steps.png.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.lvd_trained import data
from benchmarks.lvd_trained.frame_classifier import (
    accuracy_report,
    classify_videos,
    decode_latents,
    train_frame_classifier,
)

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "weights"
RESULTS = HERE.parent / "results"
WORK = Path("/tmp/vgate-lvd-trained")
SCHEDULE = 50
VOTE = (20, 12)  # the study's first-η vote: 12 flagged of the first 20 steps


@dataclass(frozen=True)
class RunConfig:
    """Sizes of one evidence run (the test uses a much smaller one)."""

    model: Path = WEIGHTS
    work: Path = WORK
    train_per_class: int = 12
    test_per_class: int = 10
    guarded_per_class: int = 3
    schedule: int = SCHEDULE
    probe_epochs: int = 40
    probe_mode: str = "auto"
    threads: int = 1
    seed: int = 0
    max_early_step: int = 10  # the single check step is chosen among steps 1..this
    classifier_per_class: int | None = None  # training prompts per class for the frame
    # classifier (None: all 84)
    classes: tuple[int, ...] | None = None  # only these condition classes (None: all eight)


def prompt_sets(cfg: RunConfig) -> tuple[list[data.Prompt], list[data.Prompt]]:
    """Disjoint (probe-train A, test B) subsets of the held-out prompts."""
    held_out = _only(data.split_prompts()[1], cfg.classes)
    a = data.balanced_subset(held_out, cfg.train_per_class, cfg.seed)
    rest = [p for p in held_out if p not in set(a)]
    b = data.balanced_subset(rest, cfg.test_per_class, cfg.seed + 1)
    return a, b


def _only(prompts: list[data.Prompt], classes: tuple[int, ...] | None) -> list[data.Prompt]:
    return prompts if classes is None else [p for p in prompts if p.cls in classes]


def write_policy(path: Path, probe: Path, check_steps: Sequence[int], required: int) -> Path:
    """A policy that blocks all five categories (threshold 0.5) and guards with ``probe``."""
    from vgate.categories import CATEGORY_IDS

    lines = ["version: 1", "extends: default", "categories:"]
    lines += [f"  {c}:\n    action: block" for c in CATEGORY_IDS]
    decision = "vote" if required > 1 else "threshold"
    lines += [
        "generation:",
        f"  probe: {json.dumps(str(probe))}",
        f"  check_steps: [{', '.join(map(str, check_steps))}]",
        f"  decision: {decision}",
        f"  vote_required: {required}",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def collect(cfg: RunConfig, prompts: list[data.Prompt], name: str, seed: int) -> dict[str, Any]:
    """x̂₀ at every step for ``prompts`` (resumable) -> the collection summary."""
    from vgate.lvd.collect import collect_latents

    csv_path = data.write_labelled_csv(prompts, cfg.work / f"{name}.csv")
    summary = collect_latents(
        str(cfg.model),
        csv_path,
        list(range(1, cfg.schedule + 1)),
        cfg.work / name,
        num_inference_steps=cfg.schedule,
        num_frames=data.FRAMES,
        height=data.SIZE,
        width=data.SIZE,
        seed=seed,
        device="cpu",
        progress=False,
    )
    record = cfg.work / f"{name}.collect.json"
    if summary.collected:  # a resumed run that collected nothing keeps the first run's numbers
        info = {
            "prompts": len(prompts),
            "collected": summary.collected,
            "seconds": round(summary.seconds, 1),
            "denoiser_calls": summary.denoiser_calls,
            "denoiser_calls_per_prompt": summary.denoiser_calls / summary.collected,
        }
        record.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return json.loads(record.read_text(encoding="utf-8"))


def choose_step(probe_report: dict[str, Any], max_step: int) -> int:
    """The earliest step (<= ``max_step``) with the best validation accuracy on set A."""
    rows = [r for r in probe_report["validation"]["per_step"] if r["step"] <= max_step]
    best = max(r["accuracy"] or 0.0 for r in rows)
    return min(r["step"] for r in rows if (r["accuracy"] or 0.0) >= best - 0.005)


def _defense(report: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "check_steps",
        "required",
        "accuracy",
        "unsafe_recall",
        "false_stop_rate",
        "unsafe_compute_saved",
        "mean_stop_step_unsafe",
    )
    return {k: report["defense"][k] for k in keep}


def prompt_filter(policy: Path, prompts: list[data.Prompt]) -> dict[str, Any]:
    """vgate's prompt gate on the prompts: flagged = a block-category hit."""
    from vgate.core.findings import BLOCK, Record
    from vgate.core.gate import Gate

    verdicts = Gate(policy).judge(
        [Record(p.text, "prompts.csv", i + 1) for i, p in enumerate(prompts)]
    )
    flagged = np.array([v.decision == BLOCK for v in verdicts])
    return _binary(flagged, prompts, steps_if_flagged=0)


def _binary(flagged: np.ndarray, prompts: list[data.Prompt], steps_if_flagged: int) -> dict:
    unsafe = np.array([p.label != "safe" for p in prompts])
    run = np.where(flagged, steps_if_flagged, SCHEDULE)
    return {
        "accuracy": float((flagged == unsafe).mean()),
        "unsafe_recall": float(flagged[unsafe].mean()),
        "false_stop_rate": float(flagged[~unsafe].mean()),
        "unsafe_compute_saved": float(1 - run[unsafe].sum() / (SCHEDULE * unsafe.sum())),
    }


def output_filter(cfg: RunConfig, prompts: list[data.Prompt], name: str) -> dict[str, Any]:
    """The frame classifier on the final videos (x̂₀ of the last step, decoded by the VAE):
    sample quality (8 classes) and the output-only filter (unsafe vs safe)."""
    from vgate.lvd.pipelines import load_pipeline
    from vgate.lvd.shards import read_latents

    latents = read_latents(cfg.work / name)
    order = {str(i): k for k, i in enumerate(latents.ids)}
    x0 = latents.x0[[order[p.id] for p in prompts], -1].astype(np.float32)
    videos = decode_latents(load_pipeline(str(cfg.model), device="cpu"), x0)
    train = _only(data.split_prompts()[0], cfg.classes)
    if cfg.classifier_per_class:
        train = data.balanced_subset(train, cfg.classifier_per_class, cfg.seed)
    clf = train_frame_classifier(train)
    quality = accuracy_report(clf, videos, prompts)
    classes = classify_videos(clf, videos)
    flagged = np.array([data.CLASSES[c].label != "safe" for c in classes])
    return {"sample_quality": quality, "filter": _binary(flagged, prompts, SCHEDULE)}


def guarded_compute(
    cfg: RunConfig, prompts: list[data.Prompt], seeds: dict[str, int], policy: Path
) -> dict[str, Any]:
    """``vgate generate --guarded`` on each prompt (the seed its collection used), counting
    denoiser calls and steps; per prompt and summed for unsafe and safe prompts."""
    from vgate.commands.generate import GenerateOptions, generate
    from vgate.policy import load_policy

    pol = load_policy(policy)
    (cfg.work / "videos").mkdir(parents=True, exist_ok=True)
    rows = []
    for p in prompts:
        options = GenerateOptions(
            prompt=p.text,
            model=str(cfg.model),
            guarded=True,
            policy=str(policy),
            out=cfg.work / "videos" / f"{p.id}.mp4",
            steps=cfg.schedule,
            seed=seeds[p.id],
            device="cpu",
            num_frames=data.FRAMES,
            height=data.SIZE,
            width=data.SIZE,
            quiet=True,
        )
        outcome = generate(options, pol)
        rows.append(
            {
                "id": p.id,
                "label": p.label,
                "stage": outcome.stage,
                "steps_run": outcome.steps_run,
                "denoiser_calls": outcome.denoiser_calls,
                "seconds": round(outcome.seconds, 2),
            }
        )
    out: dict[str, Any] = {"prompts": rows}
    for group in ("unsafe", "safe"):
        mine = [r for r in rows if (r["label"] != "safe") == (group == "unsafe")]
        out[group] = {
            "n": len(mine),
            "denoiser_calls": sum(r["denoiser_calls"] for r in mine),
            "mean_steps_run": float(np.mean([r["steps_run"] for r in mine])) if mine else None,
            "stopped_by_prompt_gate": sum(r["stage"] == "prompt" for r in mine),
            "stopped_by_latent_gate": sum(r["stage"] == "latent" for r in mine),
        }
    return out


def run(cfg: RunConfig) -> dict[str, Any]:
    """The whole evidence run; returns the report (see the module docstring)."""
    import torch

    from vgate.commands.probe import evaluate_probe
    from vgate.lvd.train import train_probe

    torch.set_num_threads(cfg.threads)
    started = time.perf_counter()
    cfg.work.mkdir(parents=True, exist_ok=True)
    set_a, set_b = prompt_sets(cfg)
    seeds = {"set_a": 10_000, "set_b": 20_000}
    collections = {
        "set_a": collect(cfg, set_a, "set_a", seeds["set_a"]),
        "set_b": collect(cfg, set_b, "set_b", seeds["set_b"]),
    }
    probe_dir = cfg.work / "probe"
    probe_report = train_probe(
        cfg.work / "set_a",
        probe_dir,
        mode=cfg.probe_mode,
        epochs=cfg.probe_epochs,
        seed=cfg.seed,
        val_fraction=0.3,
        device="cpu",
        threads=cfg.threads,
        progress=False,
    )
    step = choose_step(probe_report, cfg.max_early_step)
    eta, lam = min(VOTE[0], cfg.schedule), min(VOTE[1], cfg.schedule)
    single_policy = write_policy(cfg.work / "policy-single.yaml", probe_dir, [step], 1)
    vote_policy = write_policy(cfg.work / "policy-vote.yaml", probe_dir, range(1, eta + 1), lam)
    evaluate = {
        "device": "cpu",
        "threads": cfg.threads,
        "show": False,
    }
    plot = cfg.work / "steps.png"
    single = evaluate_probe(cfg.work / "set_b", probe_dir, single_policy, plot=plot, **evaluate)
    vote = evaluate_probe(cfg.work / "set_b", probe_dir, vote_policy, **evaluate)
    output = output_filter(cfg, set_b, "set_b")
    guarded_prompts = data.balanced_subset(set_b, cfg.guarded_per_class, cfg.seed + 2)
    row_seed = {p.id: seeds["set_b"] + i for i, p in enumerate(set_b)}
    guarded = guarded_compute(cfg, guarded_prompts, row_seed, single_policy)
    plain_calls = collections["set_b"]["denoiser_calls_per_prompt"]
    unsafe_share = float(np.mean([p.label != "safe" for p in set_b]))
    return {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(cfg).items()},
        "model": _model_card(cfg.model),
        "prompts": {
            "probe_train_set_a": len(set_a),
            "test_set_b": len(set_b),
            "test_unsafe_share": unsafe_share,
            "binary_majority_baseline": max(unsafe_share, 1 - unsafe_share),
        },
        "collections": collections,
        "probe": {
            "mode": probe_report["mode"],
            "validation_on_set_a": {
                k: v for k, v in probe_report["validation"].items() if k != "per_step"
            },
            "training_seconds": probe_report["training"]["seconds"],
            "chosen_step": step,
        },
        "per_step_on_set_b": [
            {k: r.get(k) for k in ("step", "accuracy", "unsafe_recall", "safe_fpr", "roc_auc")}
            | {"macro_f1": r.get("macro_f1")}
            for r in single["per_step"]
        ],
        "defense_on_set_b": {
            f"threshold@{step}": _defense(single),
            f"vote {lam}/{eta}": _defense(vote),
            "best_rules_in_hindsight": {
                k: single["comparison"][k] for k in ("best_threshold", "best_vote", "note")
            },
        },
        "filters_on_set_b": {
            f"lvd threshold@{step}": _defense(single),
            f"lvd vote {lam}/{eta}": _defense(vote),
            "prompt_only (vgate prompt gate)": prompt_filter(single_policy, set_b),
            "output_only (frame classifier, final video)": output["filter"],
        },
        "sample_quality_on_set_b": output["sample_quality"],
        "compute": {
            "plain_denoiser_calls_per_prompt": plain_calls,
            "guarded": guarded,
            "unsafe_calls_saved": 1
            - guarded["unsafe"]["denoiser_calls"] / (plain_calls * guarded["unsafe"]["n"])
            if guarded["unsafe"]["n"]
            else None,
        },
        "seconds": round(time.perf_counter() - started, 1),
        "plot": str(plot),
    }


def _model_card(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / "training.json"
    if not path.is_file():
        return {"path": str(model_dir)}
    info = json.loads(path.read_text(encoding="utf-8"))
    keep = ("unet_params", "vae_params", "text_encoder_params", "unet_steps_run", "total_seconds")
    return {"path": str(model_dir), **{k: info.get(k) for k in keep}}


def print_report_file(path: Path) -> None:
    """Print the summary of a saved report (``--show``)."""
    print_summary(json.loads(Path(path).read_text(encoding="utf-8")))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=WEIGHTS)
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--train-per-class", type=int, default=RunConfig.train_per_class)
    parser.add_argument("--test-per-class", type=int, default=RunConfig.test_per_class)
    parser.add_argument("--guarded-per-class", type=int, default=RunConfig.guarded_per_class)
    parser.add_argument("--out", type=Path, default=RESULTS / "lvd_trained.json")
    parser.add_argument("--plot", type=Path, default=RESULTS / "lvd_trained_steps.png")
    parser.add_argument("--show", action="store_true", help="print the saved --out report")
    args = parser.parse_args(argv)
    if args.show:
        print_report_file(args.out)
        return 0
    cfg = RunConfig(
        model=args.model,
        work=args.work,
        train_per_class=args.train_per_class,
        test_per_class=args.test_per_class,
        guarded_per_class=args.guarded_per_class,
    )
    report = run(cfg)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    Path(args.plot).write_bytes(Path(report["plot"]).read_bytes())
    print_summary(report)
    return 0


def print_summary(report: dict[str, Any]) -> None:
    """The per-step table and the filters side by side, as plain text."""
    print("step  accuracy  unsafe_recall  safe_fpr  macro_f1")
    for r in report["per_step_on_set_b"]:
        cells = [r["accuracy"], r["unsafe_recall"], r["safe_fpr"], r["macro_f1"]]
        print(
            f"{r['step']:>4}  " + "  ".join("   -  " if c is None else f"{c:6.3f}" for c in cells)
        )
    print()
    print(f"{'filter':<46} accuracy  unsafe_recall  false_stops  unsafe_compute_saved")
    for name, row in report["filters_on_set_b"].items():
        cells = [row["accuracy"], row["unsafe_recall"], row["false_stop_rate"]]
        cells.append(row["unsafe_compute_saved"])
        print(f"{name:<46} " + "  ".join("  -   " if c is None else f"{c:6.3f}" for c in cells))
    quality = report["sample_quality_on_set_b"]
    print(
        f"\nsample quality: frame classifier {quality['accuracy']:.3f} on generated videos "
        f"(chance {quality['chance']:.3f}, n={quality['n']})"
    )
    compute = report["compute"]
    print(f"compute: plain {compute['plain_denoiser_calls_per_prompt']:.0f} calls/prompt; guarded")
    for group in ("unsafe", "safe"):
        g = compute["guarded"][group]
        print(
            f"  {group}: {g['denoiser_calls']} calls over {g['n']} prompts; stopped by the "
            f"prompt gate {g['stopped_by_prompt_gate']}, by the latent gate "
            f"{g['stopped_by_latent_gate']}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
