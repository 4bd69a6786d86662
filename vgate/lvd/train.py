"""Training the LVD probe on a latent collection and writing a probe directory (the library
behind ``vgate probe train``, see :mod:`vgate.commands.probe`).

Two modes: ``shared`` (one probe, the timestep is an input, trained on every collected step) and
``per-step`` (one probe per collected step, one ONNX file each). ``auto`` trains both on the same
split and keeps the one with the better mean validation macro F1 over steps.

A probe directory holds ``probe.onnx`` (shared) or ``probe-stepNNN.onnx`` (per-step),
``probe.json`` (what the runtime needs plus validation metrics), ``split.json`` (the prompt ids
of each split, for ``vgate probe eval --split validation``) and ``CARD.md``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vgate.categories import CATEGORY_IDS
from vgate.errors import MissingExtraError, VgateError
from vgate.lvd.runtime import PROBE_FORMAT, PROBE_JSON
from vgate.lvd.shards import LatentSet, Manifest, read_latents
from vgate.metrics import category_f1, format_metric, unsafe_metrics

MODES = ("auto", "shared", "per-step")
SPLIT_JSON = "split.json"
CARD = "CARD.md"
SHARED_FILE = "probe.onnx"
THRESHOLD = 0.5
EPOCHS, BATCH_SIZE, LR, WIDTH = 30, 32, 3e-3, 32


def step_file(step: int) -> str:
    """File name of the per-step graph for ``step``."""
    return f"probe-step{step:03d}.onnx"


def _require_torch() -> None:
    for module in ("torch", "onnx"):
        try:
            __import__(module)
        except ImportError:
            raise MissingExtraError(module, "generate") from None


def split_prompts(
    labels: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, validation), stratified by safe/unsafe; a prompt's steps stay together.

    Each group gives ``round(val_fraction * size)`` rows to validation, at least one when the
    group has two or more prompts.
    """
    rng = np.random.default_rng(seed)
    unsafe = labels.any(axis=1)
    train, val = [], []
    for group in (np.flatnonzero(~unsafe), np.flatnonzero(unsafe)):
        group = rng.permutation(group)
        n_val = round(val_fraction * len(group))
        if len(group) >= 2:
            n_val = min(max(n_val, 1), len(group) - 1)
        val.append(group[:n_val])
        train.append(group[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def step_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float = THRESHOLD) -> dict:
    """Validation metrics at one step: binary unsafe-vs-safe and per-category F1."""
    unsafe = labels.any(axis=1)
    flagged = (probs >= threshold).any(axis=1)
    per_category, macro = category_f1(labels, probs, np.full(len(CATEGORY_IDS), threshold))
    return {
        **unsafe_metrics(unsafe, flagged, probs.max(axis=1)),
        "macro_f1": macro,
        "f1": per_category,
    }


def _mean(values: list[float | None]) -> float:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else 0.0


def _summary(per_step: list[dict]) -> dict[str, float]:
    return {
        "mean_macro_f1": _mean([m["macro_f1"] for m in per_step]),
        "mean_accuracy": _mean([m["accuracy"] for m in per_step]),
    }


def _train_mode(
    data: LatentSet,
    mode: str,
    rows: tuple[np.ndarray, np.ndarray],
    settings: Any,
    width: int,
    device: Any,
    progress: bool | None,
) -> tuple[dict[int | None, Any], list[dict]]:
    """Train one mode; (models by step, None for shared; per-step validation metrics)."""
    import torch

    from vgate.lvd import probe

    train_rows, val_rows = rows
    manifest = data.manifest
    steps = list(manifest.steps)
    timesteps = np.asarray(manifest.timesteps, dtype=np.float32)
    config = probe.ProbeConfig(channels=manifest.latent_channels, width=width)
    models: dict[int | None, Any] = {}

    def fit(step_index: int | None, seed: int, pairs: np.ndarray, label: str) -> Any:
        mean, std = probe.channel_stats(data.x0, train_rows, step_index=step_index)
        torch.manual_seed(seed)
        model = probe.ProbeNet(config, mean, std)
        probe.fit(
            model,
            data.x0,
            data.labels,
            pairs,
            timesteps,
            settings,
            device,
            label=label,
            progress=progress,
        )
        return model

    if mode == "shared":
        # the same init whichever mode trains first
        pairs = np.array([(r, s) for r in train_rows for s in range(len(steps))], dtype=np.int64)
        models = dict.fromkeys(steps, fit(None, settings.seed, pairs, "shared probe"))
    else:
        for s, step in enumerate(steps):
            pairs = np.stack([train_rows, np.full(len(train_rows), s)], axis=1).astype(np.int64)
            models[step] = fit(s, settings.seed + s, pairs, f"probe for step {step}")
    per_step = []
    for s, step in enumerate(steps):
        probs = probe.predict(models[step], data.x0, val_rows, s, float(timesteps[s]), device)
        per_step.append(
            {
                "step": step,
                "timestep": float(manifest.timesteps[s]),
                "n": len(val_rows),
                **step_metrics(data.labels[val_rows], probs),
            }
        )
    if mode == "shared":
        models = {None: models[steps[0]]}
    return models, per_step


@dataclass(frozen=True)
class TrainOptions:
    """Settings of ``vgate probe train`` (see :func:`train_probe`)."""

    mode: str = "auto"
    epochs: int = EPOCHS
    seed: int = 0
    val_fraction: float = 0.2
    batch_size: int = BATCH_SIZE
    lr: float = LR
    width: int = WIDTH
    device: str = "auto"
    threads: int | None = None
    progress: bool | None = None

    def check(self) -> None:
        if self.mode not in MODES:
            raise VgateError(
                f"unknown probe mode {self.mode!r}: expected one of {', '.join(MODES)}"
            )
        if self.epochs < 1:
            raise VgateError(f"--epochs must be at least 1, got {self.epochs}")
        if not 0 < self.val_fraction < 1:
            raise VgateError(f"--val-fraction must lie between 0 and 1, got {self.val_fraction}")
        if self.batch_size < 1 or self.width < 8 or self.lr <= 0:
            raise VgateError("--batch-size must be >= 1, --width >= 8 and --lr > 0")


def train_probe(
    directory: Path,
    out: Path,
    *,
    mode: str = "auto",
    epochs: int = EPOCHS,
    seed: int = 0,
    val_fraction: float = 0.2,
    batch_size: int = BATCH_SIZE,
    lr: float = LR,
    width: int = WIDTH,
    device: str = "auto",
    threads: int | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Train a probe on the collection in ``directory`` and write the probe directory ``out``.

    ``mode``: auto | shared | per-step; ``device``: auto | cpu | cuda; ``threads`` caps torch's
    CPU threads (1 is fastest for small collections on a busy machine); ``progress``: None shows
    a bar on a terminal. Returns the report that ``probe.json`` also holds (``mode``,
    ``validation``, ``modes``, ``training``).
    """
    opts = TrainOptions(
        mode, epochs, seed, val_fraction, batch_size, lr, width, device, threads, progress
    )
    opts.check()
    _require_torch()
    import torch

    previous = torch.get_num_threads()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    try:
        return _train_probe(Path(directory), Path(out), opts)
    finally:
        torch.set_num_threads(previous)


def _train_probe(directory: Path, out: Path, opts: TrainOptions) -> dict[str, Any]:
    import torch

    from vgate.lvd import probe

    data = read_latents(Path(directory))
    if len(data) < 4 or data.unsafe.all() or not data.unsafe.any():
        raise VgateError(
            f"{directory}: needs at least 4 prompts with both safe and unsafe ones to train a "
            f"probe (has {len(data)}, {int(data.unsafe.sum())} unsafe)"
        )
    rows = split_prompts(data.labels, opts.val_fraction, opts.seed)
    settings = probe.FitSettings(
        epochs=opts.epochs, batch_size=opts.batch_size, lr=opts.lr, seed=opts.seed
    )
    torch_device = probe.resolve_device(opts.device)
    started = time.perf_counter()
    candidates = ("shared", "per-step") if opts.mode == "auto" else (opts.mode,)
    results = {}
    for candidate in candidates:
        t0 = time.perf_counter()
        models, per_step = _train_mode(
            data, candidate, rows, settings, opts.width, torch_device, opts.progress
        )
        summary = {**_summary(per_step), "seconds": round(time.perf_counter() - t0, 2)}
        results[candidate] = (models, per_step, summary)
    # ties keep "shared": one graph that also serves steps that were not collected
    chosen = max(candidates, key=lambda m: results[m][2]["mean_macro_f1"])
    models, per_step, summary = results[chosen]
    one_model = next(iter(models.values()))
    report = {
        "mode": chosen,
        "selected_by": "mean validation macro F1 over steps"
        if opts.mode == "auto"
        else "requested",
        "validation": {"per_step": per_step, **summary},
        "modes": {m: {**results[m][2], "per_step": results[m][1]} for m in candidates},
        "training": {
            **asdict(settings),
            "width": opts.width,
            "device": str(torch_device),
            "val_fraction": opts.val_fraction,
            "n_train": len(rows[0]),
            "n_val": len(rows[1]),
            "parameters_per_probe": probe.count_parameters(one_model),
            "seconds": round(time.perf_counter() - started, 2),
            "torch": torch.__version__,
        },
    }
    write_probe_dir(Path(out), models, data, rows, report, Path(directory))
    return report


def _clear_graphs(out: Path) -> None:
    for old in out.glob("probe*.onnx"):
        old.unlink()


def write_probe_dir(
    out: Path,
    models: dict[int | None, Any],
    data: LatentSet,
    rows: tuple[np.ndarray, np.ndarray],
    report: dict[str, Any],
    collection: Path,
) -> None:
    """Export the graph(s) and write probe.json, split.json and CARD.md into ``out``."""
    from vgate.lvd import probe

    try:
        out.mkdir(parents=True, exist_ok=True)
        _clear_graphs(out)
    except OSError as exc:
        raise VgateError(f"{out}: cannot write the probe directory ({exc.strerror})") from None
    manifest = data.manifest
    if None in models:
        graphs: dict[str, str] = {"*": SHARED_FILE}
        probe.export_onnx(models[None], out / SHARED_FILE)
    else:
        per_step = {step: model for step, model in models.items() if step is not None}
        graphs = {str(step): step_file(step) for step in per_step}
        for step, model in per_step.items():
            probe.export_onnx(model, out / step_file(step))
    meta = {
        "format_version": PROBE_FORMAT,
        "kind": "vgate-lvd-probe",
        "mode": report["mode"],
        "graphs": graphs,
        "latent_channels": manifest.latent_channels,
        "pipeline": manifest.pipeline,
        "model": manifest.model,
        "steps": list(manifest.steps),
        "timesteps": list(manifest.timesteps),
        "num_inference_steps": manifest.num_inference_steps,
        "categories": list(CATEGORY_IDS),
        "threshold_for_metrics": THRESHOLD,
        "collection": {
            "path": str(collection),
            "manifest": json.loads(manifest.to_json()),
            "n_prompts": len(data),
            "n_unsafe": int(data.unsafe.sum()),
            "per_category": dict(zip(CATEGORY_IDS, map(int, data.labels.sum(axis=0)), strict=True)),
        },
        **{k: report[k] for k in ("selected_by", "validation", "modes", "training")},
    }
    split = {
        "seed": report["training"]["seed"],
        "val_fraction": report["training"]["val_fraction"],
        "train": [str(i) for i in data.ids[rows[0]]],
        "validation": [str(i) for i in data.ids[rows[1]]],
    }
    (out / PROBE_JSON).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    (out / SPLIT_JSON).write_text(json.dumps(split) + "\n", encoding="utf-8")
    (out / CARD).write_text(render_card(out, meta, manifest), encoding="utf-8")


def train_command(collection: str, out: Path, meta: dict[str, Any]) -> str:
    """The ``vgate probe train`` command line that reproduces the probe."""
    t = meta["training"]
    mode = "auto" if meta["selected_by"] != "requested" else meta["mode"]
    command = (
        f"vgate probe train {collection} --out {out} --mode {mode} --epochs {t['epochs']} "
        f"--seed {t['seed']} --val-fraction {t['val_fraction']}"
    )
    for key, default in (("batch_size", BATCH_SIZE), ("lr", LR), ("width", WIDTH)):
        if t[key] != default:
            command += f" --{key.replace('_', '-')} {t[key]}"
    return command


def render_card(out: Path, meta: dict[str, Any], manifest: Manifest) -> str:
    """CARD.md: how the probe was trained, on what, how well, and its limits."""
    t = meta["training"]
    c = meta["collection"]
    rows = "\n".join(
        f"| {m['step']} | {m['timestep']:.3f} | "
        + " | ".join(
            format_metric(m[key])
            for key in ("accuracy", "unsafe_recall", "safe_fpr", "roc_auc", "macro_f1")
        )
        + " |"
        for m in meta["validation"]["per_step"]
    )
    modes = "\n".join(
        f"- `{name}`: mean macro F1 {m['mean_macro_f1']:.3f}, mean accuracy "
        f"{m['mean_accuracy']:.3f} ({m['seconds']:.1f} s)"
        for name, m in meta["modes"].items()
    )
    graphs = ", ".join(f"`{g}`" for g in meta["graphs"].values())
    return f"""# LVD probe `{out.name}`

A small classifier of the predicted clean latent x̂₀ during sampling (Latent Variable Defense):
input x̂₀ float32 `[B, {manifest.latent_channels}, F, H, W]` and the timestep fraction `[B]`,
output 5 probabilities ({", ".join(CATEGORY_IDS)}). Mode `{meta["mode"]}`
({meta["selected_by"]}); graph(s): {graphs}. {t["parameters_per_probe"]:,} parameters per probe.

## Training

```
{train_command(c["path"], out, meta)}
```

{t["epochs"]} epochs, batch {t["batch_size"]}, AdamW lr {t["lr"]} (one-cycle), weight decay
{t["weight_decay"]}, horizontal flips, seed {t["seed"]}, device {t["device"]}, torch {t["torch"]};
{t["n_train"]} training and {t["n_val"]} validation prompts (split by prompt, stratified by
safe/unsafe; ids in `split.json`); {t["seconds"]:.1f} s.

## Data

The latent collection `{c["path"]}`: {c["n_prompts"]} prompts ({c["n_unsafe"]} unsafe;
per category {", ".join(f"{k} {v}" for k, v in c["per_category"].items())}).
Model `{manifest.model}` (`{manifest.pipeline}`), {manifest.num_inference_steps} sampling steps,
collected steps {", ".join(map(str, manifest.steps))}, {manifest.num_frames} frames,
{manifest.width}x{manifest.height}, seed {manifest.seed}. The full manifest is in `probe.json`.

## Validation metrics (threshold {THRESHOLD})

| step | t | accuracy | unsafe recall | safe FPR | ROC-AUC | macro F1 |
|---:|---:|---:|---:|---:|---:|---:|
{rows}

Modes compared on the same split:

{modes}

## Limits

- Valid only for latents of the model family it was trained on ({manifest.latent_channels}
  channels, `{manifest.pipeline}`); the runtime refuses other channel counts. Scores at steps far
  from the collected ones are extrapolation (shared mode) or unavailable (per-step mode).
- The validation split is small and comes from the same collection; check a held-out collection
  with `vgate probe eval` before trusting the numbers.
- Labels are the prompts' labels, not judgements of the generated videos.

## Licence

Trained here by `vgate probe train`; the probe weights are released under Apache-2.0 like vgate.
The licence of the prompts used to collect the latents is that of their source data set.
"""
