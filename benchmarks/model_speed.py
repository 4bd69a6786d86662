"""Prompt-model speed: prompts/s at batch 64 for variants side by side, and CLI startup time.

    python benchmarks/model_speed.py --data ../shared/data/prompts_train.csv

Variants: the shipped graph (weight-only int8); dynamic int8 and fp32 (fused and unfused) graphs
from training's work directory; other encoder depths (exported here with a random head: speed
only); length bucketing on/off; 1 vs 2 threads; ORT graph optimisation levels.
Prints a table and writes benchmarks/results/model_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from vgate.detectors.prompt_model import PromptModelDetector, load_model
from vgate.resources import shipped_dir

RESULTS = Path(__file__).resolve().parent / "results"
TRAINING = Path(__file__).resolve().parents[1] / "training"


def typical_prompts(data: Path, model_dir: Path, n: int, max_tokens: int = 77) -> list[str]:
    """``n`` prompts of at most ``max_tokens`` tokens, in file order of a seeded shuffle."""
    import csv

    from tokenizers import Tokenizer

    with open(data, encoding="utf-8-sig", newline="") as fh:
        texts = [r["text"] for r in csv.DictReader(fh)]
    rng = np.random.default_rng(0)
    texts = [texts[i] for i in rng.permutation(len(texts))]
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    lengths = [len(e.ids) for e in tok.encode_batch(texts)]
    return [t for t, k in zip(texts, lengths, strict=True) if k <= max_tokens][:n]


def with_graph(model_dir: Path, graph: Path, tmp: Path, name: str) -> Path:
    """A model directory with ``graph`` as model.onnx and the shipped tokenizer/config."""
    d = tmp / name
    d.mkdir()
    for f in ("tokenizer.json", "config.json"):
        shutil.copyfile(model_dir / f, d / f)
    shutil.copyfile(graph, d / "model.onnx")
    return d


def set_opt_level(directory: Path, level: str, threads: int) -> None:
    """Replace the cached session of ``directory`` with one at another graph optimisation level."""
    import onnxruntime as ort

    model = load_model(directory, threads)
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    model.session = ort.InferenceSession(
        str(directory / "model.onnx"), options, providers=["CPUExecutionProvider"]
    )


def throughput(det: PromptModelDetector, texts: list[str], call_size: int, repeats: int) -> float:
    """Best-of-``repeats`` prompts/s for ``detect`` calls of ``call_size`` prompts."""
    det.detect(texts[:call_size])  # warm-up (session load, allocator)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(texts), call_size):
            det.detect(texts[i : i + call_size])
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def build_depth(layers: int, tmp: Path, model_dir: Path) -> dict[str, Path]:
    """Export the encoder cut to ``layers`` with a random head (speed only): fp32 and int8."""
    sys.path.insert(0, str(TRAINING))
    import train_prompt_model as tpm

    enc = tpm.load_encoder(layers)
    rng = np.random.default_rng(0)
    head = tpm.Head(rng.normal(size=(5, enc.config.hidden_size)), np.zeros(5))
    fp32, fused, int8, dyn = (tmp / f"L{layers}-{k}.onnx" for k in ("fp32", "fused", "w8", "dyn"))
    tpm.export_onnx(tpm.PromptScorer(enc, head), fp32, enc.config.vocab_size)
    tpm.optimize_onnx(fp32, fused, enc.config.num_attention_heads, enc.config.hidden_size)
    tpm.quantize_weights_int8(fused, int8)
    tpm.quantize_dynamic_int8(fused, dyn)
    return {
        f"L{layers} int8 weight-only": with_graph(model_dir, int8, tmp, f"L{layers}-w8"),
        f"L{layers} int8 dynamic": with_graph(model_dir, dyn, tmp, f"L{layers}-dyn"),
        f"L{layers} fp32 (fused)": with_graph(model_dir, fused, tmp, f"L{layers}-fused"),
    }


def startup_times(runs: int, text: str = "a cat playing piano on a stage") -> list[float]:
    """Wall time of ``vgate scan --text TEXT`` from process start to exit (the first verdict)."""
    exe = shutil.which("vgate")
    cmd = [exe] if exe else [sys.executable, "-m", "vgate.cli"]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [*cmd, "scan", "--text", text, "--format", "json"],
            stdout=subprocess.DEVNULL,
            check=False,
        )
        times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="CSV with a text column")
    p.add_argument("--model", type=Path, default=shipped_dir("models") / "prompt-minilm")
    p.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "vgate-train")
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--depths", type=int, nargs="*", default=[2, 6], help="other encoder depths to compare"
    )
    p.add_argument("--startup-runs", type=int, default=7)
    args = p.parse_args(argv)

    config = json.loads((args.model / "config.json").read_text())
    texts = typical_prompts(args.data, args.model, args.n)
    results: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "load_average_before": os.getloadavg(),
        "n_prompts": len(texts),
        "max_tokens": 77,
        "shipped": {"variant": f"L{config['encoder_layers']}", "precision": config["precision"]},
        "throughput": [],
    }
    rows = results["throughput"]

    def measure(label: str, directory: Path, threads: int = 2, **kw: Any) -> None:
        call = kw.pop("call_size", 64)
        det = PromptModelDetector(directory, threads=threads, **kw)
        pps = throughput(det, texts, call, args.repeats)
        rows.append({"variant": label, "threads": threads, "prompts_per_s": round(pps, 1)})
        print(f"{label:48s} threads={threads}  {pps:8.1f} prompts/s", flush=True)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        name = f"L{config['encoder_layers']}"
        variant_dir = args.work_dir / f"{name}-C{config['head_C']:g}"
        if config["finetune_epochs"]:
            variant_dir = (
                args.work_dir / f"{name}-ft{config['finetune_epochs']}-C{config['head_C']:g}"
            )
        dirs = {f"{name} {config['precision']} (shipped)": args.model}
        graphs = (
            ("model.int8-dynamic.onnx", "int8 dynamic"),
            ("model.fused.onnx", "fp32 (fused)"),
            ("model.fp32.onnx", "fp32"),
        )
        for graph, label in graphs:
            if (variant_dir / graph).exists():
                dirs[f"{name} {label}"] = with_graph(
                    args.model, variant_dir / graph, tmp, label.replace(" ", "-")
                )
        for layers in args.depths:
            dirs.update(build_depth(layers, tmp, args.model))

        print(f"{len(texts)} prompts <= 77 tokens, detect() calls of 64, best of {args.repeats}")
        for label, d in dirs.items():
            measure(f"{label}, batch 64", d)
        shipped = dirs[f"{name} {config['precision']} (shipped)"]
        measure(f"{name} shipped, batch 64, 1 thread", shipped, threads=1)
        big = f"{name} shipped, one call of {len(texts)}"
        measure(f"{big}, bucketing on", shipped, call_size=len(texts), bucketing=True)
        # a fresh copy so that the session (cached per directory) is not shared
        nobucket = with_graph(shipped, shipped / "model.onnx", tmp, "nobucket")
        measure(f"{big}, bucketing off", nobucket, call_size=len(texts), bucketing=False)
        if f"{name} fp32" in dirs:
            for level in ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_ALL"):
                d = with_graph(args.model, dirs[f"{name} fp32"] / "model.onnx", tmp, level)
                set_opt_level(d, level, 2)
                measure(f"{name} fp32 unfused, ORT {level}, batch 64", d)

    times = startup_times(args.startup_runs)
    results["startup_s"] = {"median": statistics.median(times), "runs": times}
    results["load_average_after"] = os.getloadavg()
    print(
        f"vgate scan --text startup: median {statistics.median(times):.3f} s "
        f"(runs: {', '.join(f'{t:.2f}' for t in times)})"
    )
    results["model_size_bytes"] = {
        f.name: f.stat().st_size for f in sorted(args.model.iterdir()) if f.is_file()
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "model_speed.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
