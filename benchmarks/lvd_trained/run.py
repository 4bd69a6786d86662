"""LVD evidence on the small text-to-video model trained here (benchmarks/lvd_trained/weights).

    nice -n 5 python -m benchmarks.lvd_trained.run

Everything LVD does goes through vgate's own code: ``collect_latents`` (``vgate probe
collect``), ``train_probe`` (``vgate probe train``), the probe runtime and stop rule of
``vgate probe eval`` and ``generate`` (``vgate generate --guarded``).

1. Two disjoint sets of held-out prompts (never seen by the video model): set A trains the
   probe and the prompt filters (the probe's own validation split picks the check step), set B
   tests every filter. Both hold ordinary prompts (the words name the scene) and seed-determined
   ones (neutral words; the noise seed decides between a safe and an unsafe scene).
2. x̂₀ is collected at every one of the 50 DDIM steps for both sets.
3. Ground truth is what each generated video shows: the frame classifier (exact on clean clips)
   on the video decoded from the step-50 x̂₀; the collections are relabelled with it. Agreement
   with the prompts' own labels is reported separately.
4. The probe is trained on A. On B every filter decides per prompt (saved in the report):
   prompt filters trained on A (TF-IDF + LR, vgate's MiniLM prompt model with its head refitted
   on A) and vgate's shipped prompt gate, the output-only filter, LVD single step and first-η
   vote (offline replay of vgate's stop rule on the collected x̂₀), prompt gate + LVD combined.
   Metrics per filter, separately on ordinary and seed-determined prompts.
5. Online: ``vgate generate --guarded`` on a subset of B with the seeds of the collection; its
   per-prompt outcome is checked against the offline replay of the same policy, prompt by prompt.

Writes benchmarks/results/lvd_trained.json and benchmarks/results/lvd_trained_steps.png.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.lvd_trained import data
from benchmarks.lvd_trained.filters import (
    filter_metrics,
    majority_baseline,
    minilm_filter,
    tfidf_filter,
    vgate_gate_filter,
)
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
SUBSETS = ("all", "ordinary", "seeded", "seeded_mixed_on_a")


@dataclass(frozen=True)
class RunConfig:
    """Sizes of one evidence run (the test uses a much smaller one)."""

    model: Path = WEIGHTS
    work: Path = WORK
    train_per_class: int = 8
    test_per_class: int = 8
    seeded_train_per_group: int = 12
    seeded_test_per_group: int = 12
    guarded_per_class: int = 2
    guarded_seeded_per_group: int = 4
    schedule: int = SCHEDULE
    probe_epochs: int = 40
    probe_mode: str = "auto"
    threads: int = 1
    seed: int = 0
    max_early_step: int = 10  # the single check step is chosen among steps 1..this
    classifier_per_class: int | None = None  # training prompts per class for the frame
    # classifier (None: all 84)
    classes: tuple[int, ...] | None = None  # only these condition classes (None: all eight)
    minilm: bool = True  # include the retrained MiniLM prompt filter


def prompt_sets(cfg: RunConfig) -> tuple[list[data.Prompt], list[data.Prompt]]:
    """Disjoint (A, B) subsets of the held-out prompts, ordinary then seeded."""
    held_out = data.only_classes(data.split_prompts()[1], cfg.classes)
    plain, seeded = data.ordinary(held_out), [p for p in held_out if p.seeded]
    a = data.balanced_subset(plain, cfg.train_per_class, cfg.seed)
    a += data.balanced_subset(seeded, cfg.seeded_train_per_group, cfg.seed)
    taken = set(a)
    b = data.balanced_subset([p for p in plain if p not in taken], cfg.test_per_class, cfg.seed + 1)
    rest = [p for p in seeded if p not in taken]
    b += data.balanced_subset(rest, cfg.seeded_test_per_group, cfg.seed + 1)
    return a, b


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


def mixed_groups(prompts: Sequence[data.Prompt], shown: np.ndarray) -> set[int]:
    """The seeded groups whose videos in ``prompts`` (set A) show a safe AND an unsafe scene:
    the groups where the seed, not the words, decides (chosen on A, so B's filters stay fair).
    Sampling with guidance can collapse a group onto one scene; its words then predict the
    video and it is not a seed-determined group for this model."""
    kinds: dict[int, set[bool]] = {}
    for p, c in zip(prompts, shown, strict=True):
        if p.seeded:
            kinds.setdefault(p.cls, set()).add(data.CLASSES[c].label != "safe")
    return {g for g, seen in kinds.items() if seen == {True, False}}


def choose_step(probe_report: dict[str, Any], max_step: int) -> int:
    """The earliest step (<= ``max_step``) with the best validation accuracy on set A."""
    rows = [r for r in probe_report["validation"]["per_step"] if r["step"] <= max_step]
    best = max(r["accuracy"] or 0.0 for r in rows)
    return min(r["step"] for r in rows if (r["accuracy"] or 0.0) >= best - 0.005)


def final_videos(cfg: RunConfig, prompts: list[data.Prompt], name: str) -> np.ndarray:
    """Each prompt's generated video: decoded from the last step's x̂₀ (the pipeline's output),
    uint8 [N, F, H, W, 3]."""
    from vgate.lvd.pipelines import load_pipeline
    from vgate.lvd.shards import read_latents

    latents = read_latents(cfg.work / name)
    order = {str(i): k for k, i in enumerate(latents.ids)}
    x0 = latents.x0[[order[p.id] for p in prompts], -1].astype(np.float32)
    return decode_latents(load_pipeline(str(cfg.model), device="cpu"), x0)


def relabel(directory: Path, labels: dict[str, str]) -> None:
    """Rewrite the labels of a collection's shards (``labels``: prompt id -> label), each shard
    atomically: the probe then learns and is scored on what the videos show."""
    from vgate.categories import CATEGORY_IDS

    for shard in sorted(Path(directory).glob("shard-*.npz")):
        with np.load(shard, allow_pickle=False) as stored:
            arrays = {k: stored[k] for k in stored.files}
        hot = np.zeros_like(arrays["labels"])
        for row, prompt_id in enumerate(arrays["ids"]):
            label = labels[str(prompt_id)]
            if label != "safe":
                hot[row, CATEGORY_IDS.index(label)] = 1
        arrays["labels"] = hot
        tmp = shard.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, shard)


def label_agreement(prompts: list[data.Prompt], shown: np.ndarray) -> dict[str, Any]:
    """How often the video shows what the prompt's words say (ordinary prompts), and which
    scene the seed-determined prompts' videos show."""
    plain = [i for i, p in enumerate(prompts) if not p.seeded]
    seeded = [i for i, p in enumerate(prompts) if p.seeded]
    unsafe = np.array([data.CLASSES[c].label != "safe" for c in shown])
    out: dict[str, Any] = {}
    if plain:
        cls = np.array([prompts[i].cls for i in plain])
        said = np.array([prompts[i].label != "safe" for i in plain])
        out["ordinary"] = {
            "n": len(plain),
            "class_agreement": float((shown[plain] == cls).mean()),
            "unsafe_label_agreement": float((unsafe[plain] == said).mean()),
        }
    if seeded:
        one_of_two = [shown[i] in prompts[i].choices for i in seeded]
        out["seeded"] = {
            "n": len(seeded),
            "shows_one_of_its_two_scenes": float(np.mean(one_of_two)),
            "unsafe_share": float(unsafe[seeded].mean()),
        }
    return out


def offline_stops(
    cfg: RunConfig, name: str, prompts: list[data.Prompt], policies: dict[str, Path]
) -> tuple[dict[str, list[int | None]], np.ndarray, list[int]]:
    """Replay each policy's stop rule (vgate's ``first_stop``) on the probe's scores of every
    collected step: {policy name: stop step or None per prompt}, the scores [N, S, 5] and the
    steps."""
    from vgate.lvd.evaluate import score_collection
    from vgate.lvd.guard import GuardRule, first_stop
    from vgate.lvd.runtime import ProbeRuntime
    from vgate.lvd.shards import read_latents
    from vgate.policy import load_policy

    runtime = ProbeRuntime(cfg.work / "probe", device="cpu", threads=cfg.threads)
    latents = read_latents(cfg.work / name)
    indices = [i for i, s in enumerate(latents.manifest.steps) if runtime.supports(s)]
    steps = [latents.manifest.steps[i] for i in indices]
    scores = score_collection(runtime, latents, indices)
    order = {str(i): k for k, i in enumerate(latents.ids)}
    scores = scores[[order[p.id] for p in prompts]]
    stops = {}
    for key, path in policies.items():
        rule = GuardRule.from_policy(load_policy(path))
        stops[key] = [first_stop(rule, steps, s) for s in scores]
    return stops, scores, steps


def per_step_table(
    scores: np.ndarray, steps: list[int], unsafe: np.ndarray, policy: Path, subset: np.ndarray
) -> list[dict[str, Any]]:
    """Accuracy, unsafe recall, safe FPR and ROC-AUC of "this step alone is flagged"."""
    from vgate.lvd.guard import GuardRule
    from vgate.metrics import unsafe_metrics
    from vgate.policy import load_policy

    rule = GuardRule.from_policy(load_policy(policy))
    rows = []
    for j, step in enumerate(steps):
        flagged = np.array([rule.flags(s)[0] for s in scores[subset, j]], dtype=bool)
        score = np.where(rule.stopping, scores[subset, j], 0.0).max(axis=1)
        m = unsafe_metrics(unsafe[subset], flagged, score)
        rows.append(
            {"step": step} | {k: m[k] for k in ("accuracy", "unsafe_recall", "safe_fpr", "roc_auc")}
        )
    return rows


def guarded_online(
    cfg: RunConfig, prompts: list[data.Prompt], seeds: dict[str, int], policy: Path
) -> list[dict[str, Any]]:
    """``vgate generate --guarded`` on each prompt with the seed its collection used: stage,
    steps run and denoiser calls per prompt."""
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
                "stage": outcome.stage,
                "steps_run": outcome.steps_run,
                "denoiser_calls": outcome.denoiser_calls,
            }
        )
    return rows


def _decision(flagged: bool, stop: int | None, schedule: int) -> tuple[bool, int]:
    return flagged, schedule if stop is None else stop


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

    # ground truth: what the videos show
    train = data.ordinary(data.only_classes(data.split_prompts()[0], cfg.classes))
    if cfg.classifier_per_class:
        train = data.balanced_subset(train, cfg.classifier_per_class, cfg.seed)
    clf = train_frame_classifier(train)
    videos = {name: final_videos(cfg, p, name) for name, p in (("set_a", set_a), ("set_b", set_b))}
    shown = {name: classify_videos(clf, v) for name, v in videos.items()}
    for name, prompts in (("set_a", set_a), ("set_b", set_b)):
        labels = {p.id: data.CLASSES[c].label for p, c in zip(prompts, shown[name], strict=True)}
        relabel(cfg.work / name, labels)
    unsafe_a = np.array([data.CLASSES[c].label != "safe" for c in shown["set_a"]])
    unsafe = np.array([data.CLASSES[c].label != "safe" for c in shown["set_b"]])
    seeded = np.array([p.seeded for p in set_b])
    mixed = mixed_groups(set_a, shown["set_a"])
    subsets = {
        "all": np.ones(len(set_b), bool),
        "ordinary": ~seeded,
        "seeded": seeded,
        "seeded_mixed_on_a": np.array([p.seeded and p.cls in mixed for p in set_b]),
    }
    subsets = {k: m for k, m in subsets.items() if m.any()}  # an empty subset is left out

    # LVD: probe trained on A, check step chosen on A's validation split
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
    policies = {
        "single": write_policy(cfg.work / "policy-single.yaml", probe_dir, [step], 1),
        "vote": write_policy(cfg.work / "policy-vote.yaml", probe_dir, range(1, eta + 1), lam),
    }
    plot = cfg.work / "steps.png"
    replay = evaluate_probe(
        cfg.work / "set_b",
        probe_dir,
        policies["single"],
        plot=plot,
        device="cpu",
        threads=cfg.threads,
        show=False,
    )
    stops, scores, steps = offline_stops(cfg, "set_b", set_b, policies)

    # the filters, per prompt of B: (stopped?, steps run)
    texts_a, texts_b = [p.text for p in set_a], [p.text for p in set_b]
    prompt_flags = {
        "prompt: TF-IDF + LR (trained on A)": tfidf_filter(texts_a, unsafe_a, texts_b),
        "prompt: vgate gate (shipped, never saw these words)": vgate_gate_filter(
            policies["single"], texts_b
        ),
    }
    if cfg.minilm:
        prompt_flags["prompt: vgate MiniLM model, head retrained on A"] = minilm_filter(
            texts_a, unsafe_a, texts_b
        )
    n = cfg.schedule
    decisions: dict[str, list[tuple[bool, int]]] = {
        name: [(bool(f), 0 if f else n) for f in flags] for name, flags in prompt_flags.items()
    }
    decisions["output only (frame classifier on the final video)"] = [(bool(u), n) for u in unsafe]
    single_name, vote_name = f"LVD single step {step}", f"LVD vote {lam} of first {eta}"
    decisions[single_name] = [_decision(s is not None, s, n) for s in stops["single"]]
    decisions[vote_name] = [_decision(s is not None, s, n) for s in stops["vote"]]
    for gate in (
        "prompt: TF-IDF + LR (trained on A)",
        "prompt: vgate gate (shipped, never saw these words)",
    ):
        short = "TF-IDF" if gate.startswith("prompt: TF-IDF") else "vgate gate"
        decisions[f"{short} + {single_name}"] = [
            (True, 0) if g else d
            for g, d in zip(prompt_flags[gate], decisions[single_name], strict=True)
        ]
    filters = {
        subset: {
            name: filter_metrics(
                np.array([d[0] for d in rows])[mask],
                np.array([d[1] for d in rows])[mask],
                unsafe[mask],
                n,
            )
            for name, rows in decisions.items()
        }
        for subset, mask in subsets.items()
    }

    # online: guarded generation (vgate gate, then the probe at the check step) on a subset
    guarded = data.balanced_subset(data.ordinary(set_b), cfg.guarded_per_class, cfg.seed + 2)
    guarded += data.balanced_subset(
        [p for p in set_b if p.seeded], cfg.guarded_seeded_per_group, cfg.seed + 2
    )
    row_seed = {p.id: seeds["set_b"] + i for i, p in enumerate(set_b)}
    online = guarded_online(cfg, guarded, row_seed, policies["single"])
    index = {p.id: i for i, p in enumerate(set_b)}
    gate_flags = prompt_flags["prompt: vgate gate (shipped, never saw these words)"]
    for row in online:
        i = index[row["id"]]
        stop = stops["single"][i]
        row["offline_stage"] = "prompt" if gate_flags[i] else ("latent" if stop else None)
        row["offline_steps_run"] = 0 if gate_flags[i] else (stop or n)
        row["agrees"] = (row["stage"], row["steps_run"]) == (
            row["offline_stage"],
            row["offline_steps_run"],
        )
        row["unsafe"] = bool(unsafe[i])
    online_summary = {}
    for group, want in (("unsafe", True), ("safe", False)):
        mine = [r for r in online if r["unsafe"] == want]
        online_summary[group] = {
            "n": len(mine),
            "denoiser_calls": sum(r["denoiser_calls"] for r in mine),
            "stopped_by_prompt_gate": sum(r["stage"] == "prompt" for r in mine),
            "stopped_by_latent_gate": sum(r["stage"] == "latent" for r in mine),
        }

    per_prompt = [
        {
            "id": p.id,
            "text": p.text,
            "seeded": p.seeded,
            "prompt_class": None if p.seeded else data.CLASS_NAMES[p.cls],
            "seeded_group": data.SEEDED[p.cls - len(data.CLASSES)].name if p.seeded else None,
            "video_class": data.CLASS_NAMES[shown["set_b"][i]],
            "unsafe": bool(unsafe[i]),
            "stop_step": {
                name: (d[1] if d[0] else None)
                for name, d in ((k, v[i]) for k, v in decisions.items())
            },
        }
        for i, p in enumerate(set_b)
    ]
    return {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(cfg).items()},
        "model": _model_card(cfg.model),
        "ground_truth": "frame classifier on the video decoded from the step-50 x̂₀",
        "prompts": {
            "set_a": len(set_a),
            "set_a_seeded": sum(p.seeded for p in set_a),
            "set_b": len(set_b),
            "set_b_seeded": int(seeded.sum()),
            "seeded_groups_mixed_on_a": sorted(
                data.SEEDED[g - len(data.CLASSES)].name for g in mixed
            ),
            "majority_baseline": {k: majority_baseline(unsafe[m]) for k, m in subsets.items()},
            "unsafe_share": {k: float(unsafe[m].mean()) for k, m in subsets.items()},
        },
        "prompt_label_agreement": {
            "set_a": label_agreement(set_a, shown["set_a"]),
            "set_b": label_agreement(set_b, shown["set_b"]),
        },
        "sample_quality_on_set_b_ordinary": accuracy_report(
            clf, videos["set_b"][~seeded], data.ordinary(set_b)
        ),
        "collections": collections,
        "probe": {
            "mode": probe_report["mode"],
            "validation_on_set_a": {
                k: v for k, v in probe_report["validation"].items() if k != "per_step"
            },
            "training_seconds": probe_report["training"]["seconds"],
            "chosen_step": step,
        },
        "per_step_on_set_b": {
            k: per_step_table(scores, steps, unsafe, policies["single"], m)
            for k, m in subsets.items()
        },
        "filters_on_set_b": filters,
        "replay_check": {
            "vgate_probe_eval_defense_accuracy": replay["defense"]["accuracy"],
            "this_run_lvd_single_accuracy": filters["all"][single_name]["accuracy"],
        },
        "online_guarded": {
            "policy": "vgate prompt gate, then the probe at the check step",
            "plain_denoiser_calls_per_prompt": collections["set_b"]["denoiser_calls_per_prompt"],
            "summary": online_summary,
            "agree_with_offline": sum(r["agrees"] for r in online),
            "n": len(online),
            "prompts": online,
        },
        "per_prompt_on_set_b": per_prompt,
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
    for name in (
        "train_per_class",
        "test_per_class",
        "seeded_train_per_group",
        "seeded_test_per_group",
        "guarded_per_class",
        "guarded_seeded_per_group",
        "schedule",
        "probe_epochs",
        "max_early_step",
        "threads",
    ):
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=int, default=getattr(RunConfig, name))
    parser.add_argument("--probe-mode", default=RunConfig.probe_mode)
    parser.add_argument("--classifier-per-class", type=int, default=None)
    parser.add_argument(
        "--classes", type=int, nargs="+", default=None, help="scene classes (default: all 8)"
    )
    parser.add_argument("--no-minilm", action="store_true", help="skip the MiniLM prompt filter")
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
        seeded_train_per_group=args.seeded_train_per_group,
        seeded_test_per_group=args.seeded_test_per_group,
        guarded_per_class=args.guarded_per_class,
        guarded_seeded_per_group=args.guarded_seeded_per_group,
        schedule=args.schedule,
        probe_epochs=args.probe_epochs,
        probe_mode=args.probe_mode,
        max_early_step=args.max_early_step,
        classifier_per_class=args.classifier_per_class,
        classes=None if args.classes is None else tuple(args.classes),
        threads=args.threads,
        minilm=not args.no_minilm,
    )
    report = run(cfg)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    Path(args.plot).write_bytes(Path(report["plot"]).read_bytes())
    print_summary(report)
    return 0


def _cells(values: Sequence[float | None]) -> str:
    return "  ".join("    - " if v is None else f"{v:6.3f}" for v in values)


def print_summary(report: dict[str, Any]) -> None:
    """Per-step accuracy, the filters side by side per subset, and the online check."""
    print("step  accuracy (all / ordinary / seeded)   ROC-AUC (all / ordinary / seeded)")
    tables = report["per_step_on_set_b"]
    for j, row in enumerate(tables["all"]):
        acc = [tables[k][j]["accuracy"] for k in SUBSETS if k in tables]
        auc = [tables[k][j]["roc_auc"] for k in SUBSETS if k in tables]
        print(f"{row['step']:>4}  {_cells(acc)}   {_cells(auc)}")
    base = report["prompts"]["majority_baseline"]
    for subset, rows in report["filters_on_set_b"].items():
        if subset not in base:
            continue
        print(f"\n{subset} prompts of B (majority baseline {base[subset]:.3f})")
        print(f"{'filter':<58} accuracy  recall  false_stops  steps_saved  speedup")
        for name, m in rows.items():
            cells = [m["accuracy"], m["unsafe_recall"], m["false_stop_rate"]]
            cells += [m["unsafe_steps_saved"], m["unsafe_speedup"]]
            print(f"{name:<58} {_cells(cells)}")
    online = report["online_guarded"]
    print(
        f"\nonline guarded generation: {online['agree_with_offline']} of {online['n']} prompts "
        "decided as in the offline replay"
    )
    for group, g in online["summary"].items():
        print(
            f"  {group}: {g['denoiser_calls']} denoiser calls over {g['n']} prompts; stopped by "
            f"the prompt gate {g['stopped_by_prompt_gate']}, by the latent gate "
            f"{g['stopped_by_latent_gate']}"
        )
    agreement = report["prompt_label_agreement"]["set_b"]
    print(f"\nprompt-label agreement on B: {json.dumps(agreement)}")


if __name__ == "__main__":
    raise SystemExit(main())
