"""The prompt model's ONNX export: `optimum` (export, graph optimisation, dynamic int8) against the
shipped hand-made export of training/train_prompt_model.py, at equal scores and in the same run.

Runs in its own virtual environment, because optimum's ONNX exporter (``optimum-onnx``) needs
transformers < 4.58 and the shared environment has transformers 5:

    python3 -m venv --system-site-packages /work/venvs/optimum
    /work/venvs/optimum/bin/pip install "optimum-onnx[onnxruntime]" "diffusers>=0.35,<0.36"
    PYTHONPATH=$PWD /work/venvs/optimum/bin/python benchmarks/model_export.py \
        --data ../shared/data/prompts_train_v2.csv

(diffusers < 0.36 only because optimum imports diffusers when it is installed, and the shared
diffusers needs a newer huggingface_hub than transformers 4.57 allows; torch, numpy and
onnxruntime come from the system site.)

What it builds: the encoder of the shipped ``prompt-v2-minilm`` (the first 3 layers of
all-MiniLM-L6-v2, frozen, as ``train_prompt_model.load_encoder`` cuts it) is exported by
``optimum.exporters.onnx.main_export`` (opset 17, as the hand-made export) and fused by
``ORTOptimizer`` at each ``--levels`` (default O2: attention / layer-norm / GELU fusions; O3 adds
the GELU approximation). Per level three variants: ``fp32``; ``int8``, ``ORTQuantizer``'s dynamic
int8 for this CPU's instruction set (``--isa``); ``w-int8``, the optimum graph with the hand-made
weight-only int8 (``train_prompt_model.quantize_weights_int8``). The shipped model's pooling and
calibrated head (its ``linear.*`` and ``platt_*`` initializers, not retrained) are exported by
``train_prompt_model.PromptScorer`` and grafted on, so each is a drop-in ``model.onnx``
(input_ids, attention_mask[, token_type_ids]) -> scores[n, 5] for vgate's detector. The hand-made
export is rebuilt in the same run: its fp32 graph is the reference for optimum's fp32, and its
int8 graph must score exactly as the shipped file (``build.rebuilt_vs_shipped``).

What it measures, every variant beside the shipped model, scored by vgate's own detector:

- equal scores on the near-duplicate-free dev split (training/splits.py; no v2 model trained on
  it): max and mean |score - shipped score|, verdicts flipped at 0.5, binary F1, macro-F1, and
  batch dependence (max |score in a batch of 64 - score alone|; dynamic int8 computes activation
  scales per batch);
- speed: prompts/s of ``detect`` in calls of 64 and in one call of 1,024 (``--threads`` intra-op
  threads), the variants alternated in every repeat; the load time (tokenizer + session, median
  of ``--load-runs``) and the file size.

Writes benchmarks/results/model_export.json. The CPU other processes used meanwhile is recorded
(benchmarks/machine.py); timings taken on a busy machine say so and are not figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "training"), str(ROOT / "benchmarks")]

import splits  # noqa: E402
import train_prompt_model as tpm  # noqa: E402
from machine import OtherLoad  # noqa: E402
from torch import nn  # noqa: E402

from vgate.detectors.prompt_model import PromptModelDetector, _LoadedModel  # noqa: E402
from vgate.metrics import compute_metrics  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SHIPPED = ROOT / "models" / "prompt-v2-minilm"
HANDMADE = "hand-made (shipped)"
HANDMADE_FP32 = "hand-made fp32"
REBUILT = "hand-made int8 (rebuilt)"
"""The shipped export redone in this run: it must equal the shipped model (a check, not timed)."""
OPSET = 17
"""The hand-made export's opset, so the two exports differ only in the tool."""
ISAS = ("avx512_vnni", "avx512", "avx2", "arm64")
F1_TOLERANCE = 0.005
"""Largest dev F1 loss that counts as equal scores (train_prompt_model's int8 tolerance)."""
BATCH_TOLERANCE = 1e-4
"""Largest score change from batch neighbours that counts as none (float rounding is ~1e-6)."""


# --- build ---------------------------------------------------------------------------------------


def cpu_isa() -> str:
    """The best ``AutoQuantizationConfig`` target this CPU supports (from /proc/cpuinfo)."""
    if platform.machine().lower() in ("aarch64", "arm64"):
        return "arm64"
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "avx2"
    flags = set(next((ln for ln in text.splitlines() if ln.startswith("flags")), "").split())
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    return "avx512" if "avx512f" in flags else "avx2"


def shipped_head(model: Path) -> tpm.Head:
    """The shipped graph's calibrated head, read from its initializers (not retrained)."""
    import onnx
    from onnx import numpy_helper

    names = {"linear.weight": "w", "linear.bias": "b", "platt_a": "a", "platt_c": "c"}
    found = {
        names[i.name]: numpy_helper.to_array(i).astype(np.float64)
        for i in onnx.load(str(model)).graph.initializer
        if i.name in names
    }
    if len(found) != len(names):
        raise SystemExit(f"{model}: head initializers {sorted(names)} not all found")
    return tpm.Head(**found)


class HiddenStates(nn.Module):
    """Stands in for the encoder, so that ``PromptScorer`` exports only its pooling and head."""

    def forward(self, input_ids: Any, attention_mask: Any) -> SimpleNamespace:
        return SimpleNamespace(last_hidden_state=input_ids)


def export_head(head: tpm.Head, path: Path, hidden_size: int) -> None:
    """``(last_hidden_state, attention_mask) -> scores``: the hand-made pooling and head."""
    import torch

    scorer = tpm.PromptScorer(HiddenStates(), head).eval()
    hidden = torch.randn(2, 9, hidden_size, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, 9, dtype=torch.int64)
    mask[1, 6:] = 0
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(
            scorer,
            (hidden, mask),
            str(path),
            input_names=["last_hidden_state", "attention_mask"],
            output_names=["scores"],
            dynamic_axes={
                "last_hidden_state": axes,
                "attention_mask": axes,
                "scores": {0: "batch"},
            },
            opset_version=OPSET,
            dynamo=False,
        )


def graft_head(encoder: Path, head: Path, dst: Path) -> None:
    """One graph: ``encoder``'s ``last_hidden_state`` feeds ``head``; its only output is scores.

    The head's inner names get a ``head/`` prefix; its inputs keep their names, so they bind to
    the encoder's output and the shared ``attention_mask`` input.
    """
    import onnx

    enc, top = onnx.load(str(encoder)), onnx.load(str(head))
    keep = {i.name for i in top.graph.input} | {o.name for o in top.graph.output}

    def rename(name: str) -> str:
        return name if not name or name in keep else f"head/{name}"

    for node in top.graph.node:
        node.name = rename(node.name or node.output[0])
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
    for init in top.graph.initializer:
        init.name = rename(init.name)
    enc.graph.node.extend(top.graph.node)
    enc.graph.initializer.extend(top.graph.initializer)
    del enc.graph.output[:]
    enc.graph.output.extend(top.graph.output)
    onnx.save(enc, str(dst))


def model_dir(graph: Path, dst: Path) -> Path:
    """A vgate model directory: ``graph`` as model.onnx beside the shipped tokenizer and config."""
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(graph, dst / "model.onnx")
    for name in ("tokenizer.json", "config.json"):
        shutil.copyfile(SHIPPED / name, dst / name)
    return dst


def build_handmade(encoder: nn.Module, head: tpm.Head, work: Path) -> dict[str, Path]:
    """The shipped model rebuilt by train_prompt_model's export: fp32 (fused) and int8."""
    fp32, fused, int8 = work / "hm.fp32.onnx", work / "hm.fused.onnx", work / "hm.int8.onnx"
    tpm.export_onnx(tpm.PromptScorer(encoder, head), fp32, encoder.config.vocab_size)
    cfg = encoder.config
    tpm.optimize_onnx(fp32, fused, cfg.num_attention_heads, cfg.hidden_size)
    tpm.quantize_weights_int8(fused, int8)
    return {
        HANDMADE_FP32: model_dir(fused, work / "models" / "hand-made-fp32"),
        REBUILT: model_dir(int8, work / "models" / "hand-made-int8"),
    }


def build_optimum_variants(
    work: Path, levels: list[str], isa: str, per_channel: bool
) -> tuple[dict[str, Path], dict[str, Any]]:
    """Export, optimise and quantize the shipped encoder with optimum; one model dir per variant
    (``w-int8``: optimum's graph with the hand-made weight-only int8), plus the hand-made rebuild.
    """
    import onnx
    import torch
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference
    from optimum.exporters.onnx import main_export
    from optimum.onnxruntime import ORTOptimizer, ORTQuantizer
    from optimum.onnxruntime.configuration import AutoOptimizationConfig, AutoQuantizationConfig

    config = json.loads((SHIPPED / "config.json").read_text())
    encoder = tpm.load_encoder(int(config["encoder_layers"]))
    hf_dir = work / "encoder"
    encoder.save_pretrained(hf_dir)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copyfile(tpm.encoder_dir() / name, hf_dir / name)
    head = work / "head.onnx"
    weights = shipped_head(SHIPPED / "model.onnx")
    export_head(weights, head, encoder.config.hidden_size)
    handmade = build_handmade(encoder, weights, work)

    t0 = time.perf_counter()
    with torch.no_grad():
        main_export(
            str(hf_dir),
            output=work / "export",
            task="feature-extraction",
            opset=OPSET,
            library_name="transformers",
            device="cpu",
            do_validation=False,
        )
    build: dict[str, Any] = {"export_s": round(time.perf_counter() - t0, 1)}
    quant = getattr(AutoQuantizationConfig, isa)(is_static=False, per_channel=per_channel)
    build["quantization"] = {"isa": isa, "config": str(quant), "per_channel": per_channel}
    variants: dict[str, Path] = {}
    for level in levels:
        t0 = time.perf_counter()
        opt_dir = work / level
        optimizer = ORTOptimizer.from_pretrained(work / "export")
        optimizer.optimize(
            save_dir=opt_dir, optimization_config=getattr(AutoOptimizationConfig, level)()
        )
        fused = opt_dir / "model_optimized.onnx"
        variants[f"optimum {level} fp32"] = fused
        # the quantizer needs the types of the fused contrib ops' outputs, which only
        # onnxruntime's symbolic shape inference knows
        inferred = SymbolicShapeInference.infer_shapes(onnx.load(str(fused)), auto_merge=True)
        onnx.save(inferred, str(fused))
        ORTQuantizer.from_pretrained(opt_dir, file_name=fused.name).quantize(
            save_dir=work / f"{level}-int8", quantization_config=quant
        )
        variants[f"optimum {level} int8"] = (
            work / f"{level}-int8" / "model_optimized_quantized.onnx"
        )
        variants[f"optimum {level} w-int8"] = work / f"{level}-w8.onnx"
        tpm.quantize_weights_int8(fused, variants[f"optimum {level} w-int8"])
        build[f"{level}_s"] = round(time.perf_counter() - t0, 1)
    dirs = {}
    for name, graph in variants.items():
        slug = name.replace(" ", "-")
        graft_head(graph, head, work / f"{slug}.onnx")
        dirs[name] = model_dir(work / f"{slug}.onnx", work / "models" / slug)
    return {**handmade, **dirs}, build


# --- measure -------------------------------------------------------------------------------------


def dev_rows(data: Path, sample: int) -> tpm.Rows:
    """The near-duplicate-free dev split of ``data`` (seed 0, 20 %), or a fixed sample of it."""
    rows = tpm.load_rows(data)
    _, dev_idx = splits.near_dup_free_split(rows.texts, rows.labels, 0.2, 0, rows.sources)
    if sample and sample < len(dev_idx):
        dev_idx = np.sort(np.random.default_rng(0).permutation(dev_idx)[:sample])
    return rows.subset(dev_idx)


def equality(scores: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """How far ``scores`` are from the shipped model's on the same prompts."""
    diff = np.abs(scores.astype(np.float64) - reference)
    flips = (scores >= 0.5).any(axis=1) != (reference >= 0.5).any(axis=1)
    return {
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "verdicts_flipped": int(flips.sum()),
        "categories_flipped": int(((scores >= 0.5) != (reference >= 0.5)).sum()),
    }


def batch_dependence(det: PromptModelDetector, texts: list[str]) -> float:
    """Max |score in one batch - score alone| over ``texts``."""
    together = det.detect(texts).scores
    alone = np.concatenate([det.detect([t]).scores for t in texts])
    return float(np.abs(together - alone).max())


def load_seconds(directory: Path, threads: int, runs: int) -> float:
    """Median wall time to load the tokenizer and the onnxruntime session."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        _LoadedModel(directory, threads)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timed_detect(det: PromptModelDetector, texts: list[str], call_size: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(texts), call_size):
        det.detect(texts[i : i + call_size])
    return time.perf_counter() - start


def speed(
    detectors: dict[str, PromptModelDetector], texts: list[str], repeats: int
) -> dict[str, dict[str, Any]]:
    """prompts/s in calls of 64 and one call of 1,024, the variants alternated in every repeat."""
    calls = {"calls_of_64": 64, "one_call_of_1024": 1024}
    seconds: dict[str, dict[str, list[float]]] = {n: {c: [] for c in calls} for n in detectors}
    for det in detectors.values():
        det.detect(texts[:64])  # warm-up: session, allocator
    for r in range(repeats):
        print(f"speed: repeat {r + 1}/{repeats}", flush=True)
        names = list(detectors) if r % 2 == 0 else list(reversed(detectors))
        for call, size in calls.items():
            for name in names:
                seconds[name][call].append(timed_detect(detectors[name], texts, size))
    return {
        name: {
            call: {
                "best_prompts_per_s": round(len(texts) / min(s), 1),
                "median_prompts_per_s": round(len(texts) / statistics.median(s), 1),
            }
            for call, s in per_call.items()
        }
        for name, per_call in seconds.items()
    }


def versions() -> dict[str, str]:
    pkgs = ("optimum", "optimum-onnx", "onnxruntime", "onnx", "transformers", "torch", "tokenizers")
    out = {}
    for pkg in pkgs:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def print_table(res: dict[str, Any]) -> None:
    head = (
        f"{'variant':22s} {'MB':>6s} {'load s':>6s} {'p/s@64':>7s} {'p/s@1024':>8s} "
        f"{'F1':>6s} {'macroF1':>7s} {'max|d|':>7s} {'mean|d|':>8s} {'flips':>5s} "
        f"{'batch-dep':>9s} {'max|d| fp32':>11s}"
    )
    print(head)
    print("(max|d|, mean|d|, flips: against the shipped model's scores; max|d| fp32: against the")
    print(" hand-made fp32 graph; batch-dep: max |score in a batch of 64 - score alone|)")
    for name, v in res["variants"].items():
        s, eq = v["speed"], v["vs_shipped"]
        print(
            f"{name:22s} {v['size_bytes'] / 1e6:6.1f} {v['load_s']:6.2f} "
            f"{s['calls_of_64']['best_prompts_per_s']:7.0f} "
            f"{s['one_call_of_1024']['best_prompts_per_s']:8.0f} "
            f"{v['dev']['f1']:6.3f} {v['dev']['macro_f1']:7.3f} {eq['max_abs_diff']:7.4f} "
            f"{eq['mean_abs_diff']:8.5f} {eq['verdicts_flipped']:5d} {v['batch_dependence']:9.1e} "
            f"{v['vs_handmade_fp32']['max_abs_diff']:11.1e}"
        )


def verdict(v: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Equal scores (dev F1 within ``F1_TOLERANCE``), independent of batch neighbours (as the
    shipped model: ``BATCH_TOLERANCE``), and how much faster (best p/s in calls of 64)?"""
    ratio = (
        v["speed"]["calls_of_64"]["best_prompts_per_s"]
        / base["speed"]["calls_of_64"]["best_prompts_per_s"]
    )
    return {
        "equal_scores": v["dev"]["f1"] >= base["dev"]["f1"] - F1_TOLERANCE,
        "batch_independent": v["batch_dependence"] <= BATCH_TOLERANCE,
        "speed_ratio_calls_of_64": round(ratio, 3),
        "shippable_size": v["size_bytes"] <= 50e6,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    isa = cpu_isa() if args.isa == "auto" else args.isa
    work = Path(tempfile.mkdtemp(prefix="vgate-export-"))
    try:
        dirs, build = build_optimum_variants(work, args.levels, isa, not args.per_tensor)
        rows = dev_rows(args.data, args.sample)
        print(f"{len(rows.texts)} dev prompts; building done: {build}", flush=True)
        shipped = PromptModelDetector(SHIPPED, threads=args.threads).detect(rows.texts).scores
        rebuilt = PromptModelDetector(dirs.pop(REBUILT), threads=args.threads)
        build["rebuilt_vs_shipped"] = equality(rebuilt.detect(rows.texts).scores, shipped)
        dirs = {HANDMADE: SHIPPED, **dirs}
        load = OtherLoad().start()
        detectors = {n: PromptModelDetector(d, threads=args.threads) for n, d in dirs.items()}
        scores = {}
        for name, det in detectors.items():
            print(f"scoring dev: {name}", flush=True)
            scores[name] = det.detect(rows.texts).scores
        rng = np.random.default_rng(0)
        speed_texts = [rows.texts[i] for i in rng.permutation(len(rows.texts))[:1024]]
        timings = speed(detectors, speed_texts, args.repeat)
        res: dict[str, Any] = {
            "command": "PYTHONPATH=$PWD /work/venvs/optimum/bin/python benchmarks/model_export.py "
            + " ".join(sys.argv[1:]),
            "prompts": f"near-duplicate-free dev split of {args.data.name} (unseen by the v2 "
            f"models): {len(rows.texts)} for scores, a fixed {len(speed_texts)} for speed",
            "threads": args.threads,
            "repeats": args.repeat,
            "opset": OPSET,
            "versions": versions(),
            "build": build,
            "cpu_count": os.cpu_count(),
            "variants": {},
        }
        for name, det in detectors.items():
            metrics = compute_metrics(rows.y, scores[name], tpm.THRESHOLDS)
            res["variants"][name] = {
                "size_bytes": (dirs[name] / "model.onnx").stat().st_size,
                "load_s": round(load_seconds(dirs[name], args.threads, args.load_runs), 3),
                "dev": {
                    "f1": metrics["binary"]["f1"],
                    "roc_auc": metrics["binary"]["roc_auc"],
                    "macro_f1": metrics["macro_f1"],
                    "ece": metrics["ece"],
                },
                "vs_shipped": equality(scores[name], scores[HANDMADE]),
                "vs_handmade_fp32": equality(scores[name], scores[HANDMADE_FP32]),
                "batch_dependence": batch_dependence(det, rows.texts[:64]),
                "speed": timings[name],
            }
        base = res["variants"][HANDMADE]
        for v in res["variants"].values():
            v["verdict"] = verdict(v, base)
        load.stop()
        res |= load.record()
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="optimum ONNX export / optimisation / int8 of the prompt model vs the shipped "
        "hand-made export: scores and speed in one run. Run with the optimum venv's python: "
        "PYTHONPATH=$PWD /work/venvs/optimum/bin/python benchmarks/model_export.py "
        "--data ../shared/data/prompts_train_v2.csv (see the module docstring for the venv).",
    )
    p.add_argument("--data", type=Path, required=True, help="labelled CSV (prompts_train_v2.csv)")
    p.add_argument(
        "--levels",
        nargs="+",
        default=["O2"],
        choices=["O1", "O2", "O3"],
        help="ORTOptimizer levels (O3 = O2 + GELU approximation; each adds three variants)",
    )
    p.add_argument(
        "--isa", default="auto", choices=["auto", *ISAS], help="int8 target (auto: this CPU's)"
    )
    p.add_argument("--per-tensor", action="store_true", help="per-tensor weight scales")
    p.add_argument("--sample", type=int, default=0, help="score a fixed sample (0 = all dev)")
    p.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    p.add_argument("--repeat", type=int, default=3, help="speed repeats (alternating variants)")
    p.add_argument("--load-runs", type=int, default=5, help="model loads timed (median)")
    p.add_argument("--out", type=Path, default=RESULTS / "model_export.json", help="results JSON")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.data.is_file():
        print(f"error: {args.data} not found", file=sys.stderr)
        return 2
    try:
        import optimum.exporters.onnx  # noqa: F401
    except ImportError as exc:
        print(f"error: optimum's ONNX exporter is missing ({exc}); see --help", file=sys.stderr)
        return 2
    res = run(args)
    print_table(res)
    if res["machine_busy"]:
        print(res["note"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
