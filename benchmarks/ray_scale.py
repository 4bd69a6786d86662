"""Prompts/s of the local scan vs Ray Data with 1 and 2 workers, plus Ray's start-up overhead.

    python benchmarks/ray_scale.py                 # default detectors (rules + model) if shipped
    python benchmarks/ray_scale.py --detector rules --prompts 20000

Writes ``benchmarks/results/ray_scale.json``. What is measured, on the same generated prompts
(written as parquet files to a temporary directory):

- ``local``: ``Gate.scan`` in batches of 256 in this process, model already loaded: what
  ``vgate scan`` does per batch, without reading files or writing a report.
- ``local_cli``: ``vgate scan FILE.jsonl --format jsonl`` end to end (process start, reading,
  report), for scale.
- ``ray_N``: ``scan_dataset(read_parquet(dir), concurrency=N).write_parquet(out)`` end to end on
  an already started local Ray (actor start-up, model load per actor, read, scan, write).
- ``ray.init`` time and the first-batch latency (a scan of the first 256 rows to its output
  batch: pool start-up, model load per actor, listing, one read, one batch).

Timed runs are best of ``--repeats`` (2); the 1-minute load average before and after is recorded
because a shared machine skews every number.

On one machine Ray workers share its cores with the reading and writing tasks and with each
other, so this shows Ray's overhead and per-node scaling, not a cluster's.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "ray_scale.json"
SAFE = [
    "a cat on a skateboard at sunset",
    "a timelapse of clouds rolling over snowy mountains",
    "children building a sandcastle on a sunny beach",
    "a chef plating a dessert in slow motion, studio light",
    "a red fox running through fresh snow in a pine forest",
    "an astronaut floating above the earth, cinematic",
]
UNSAFE = [
    "a bloody knife fight in a dark alley",
    "a naked woman dancing in the rain",
    "a zombie horde attacking a village at night, horror movie",
    "a swastika banner at a torchlit rally",
    "a grotesque melting face in a cracked mirror",
    "a decapitated soldier lying on the battlefield",
]
STYLES = ["", ", cinematic", ", 4k, trending on artstation", ", watercolor", ", drone shot"]


def make_prompts(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(UNSAFE if rng.random() < 0.3 else SAFE)}{rng.choice(STYLES)} (take {i})"
        for i in range(n)
    ]


def model_available() -> bool:
    from vgate.resources import shipped_dir

    model = shipped_dir("models") / "prompt-minilm" / "model.onnx"
    code = Path(__file__).resolve().parent.parent / "vgate" / "detectors" / "prompt_model.py"
    return model.is_file() and code.is_file()


def bench_local(gate, prompts: list[str], batch: int = 256) -> float:
    gate.warm_up()
    started = time.perf_counter()
    for i in range(0, len(prompts), batch):
        gate.scan(prompts[i : i + batch])
    return time.perf_counter() - started


def bench_local_cli(
    prompts: list[str], tmp: Path, detectors: str | None, model: str | None
) -> float:
    data = tmp / "prompts.jsonl"
    data.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts), encoding="utf-8")
    args = ["vgate", "scan", str(data), "--format", "jsonl", "-o", str(tmp / "local.jsonl")]
    args += ["--fail-on", "never", "-q"] + (["-d", detectors] if detectors else [])
    args += ["--model", model] if model else []
    started = time.perf_counter()
    subprocess.run(args, check=True)
    return time.perf_counter() - started


def bench_ray(ray, gate, src: Path, out: Path, workers: int, repeats: int) -> tuple[float, float]:
    """(first-batch latency, best end-to-end seconds) for a fresh pool of ``workers`` actors.

    First batch: a scan of the first 256 rows to its output batch (pool start-up, model load per
    actor, listing, one read, one batch). End to end: read, scan and ``write_parquet``.
    """
    from vgate.integrations.ray import scan_dataset

    cpus = float(ray.cluster_resources()["CPU"])
    num_cpus = min(1.0, max(cpus - 1.0, 0.5) / workers)

    def scan(ds):
        return scan_dataset(
            ds, "prompt", gate, concurrency=workers, num_cpus=num_cpus, check_empty=False
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        scan(ray.data.read_parquet(str(src)).limit(256)).take_batch(256)
        first = time.perf_counter() - started
        totals = []
        for k in range(repeats):
            started = time.perf_counter()
            scan(ray.data.read_parquet(str(src))).write_parquet(str(out / str(k)))
            totals.append(time.perf_counter() - started)
    return first, min(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=None, help="default 4000 with the model")
    parser.add_argument("--detector", default=None, help="rules, model or all (default policy's)")
    parser.add_argument("--model", default=None, help="model directory (default: the policy's)")
    parser.add_argument("--files", type=int, default=8, help="parquet files to spread them over")
    parser.add_argument("--repeats", type=int, default=2, help="best of N timed runs")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq
    import ray
    from ray.data import DataContext

    from vgate.core.gate import Gate

    detectors = args.detector
    if detectors is None and args.model is None and not model_available():
        detectors = "rules"
        print("NOTE: the prompt model is not shipped yet: RULES ONLY", file=sys.stderr)
    gate = Gate("default", detectors=detectors, model=args.model)
    used = "+".join(gate.detector_names)
    n = args.prompts or (20_000 if used == "rules" else 4_000)
    prompts = make_prompts(n)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    with tempfile.TemporaryDirectory(prefix="vgate-ray-bench-") as tmpdir:
        tmp = Path(tmpdir)
        src = tmp / "prompts"
        src.mkdir()
        step = -(-n // args.files)
        for k, i in enumerate(range(0, n, step)):
            chunk = prompts[i : i + step]
            pq.write_table(
                pa.table({"id": range(i, i + len(chunk)), "prompt": chunk}),
                src / f"part-{k:03d}.parquet",
            )

        load_before = os.getloadavg()
        local_s = min(bench_local(gate, prompts) for _ in range(args.repeats))
        local_cli_s = bench_local_cli(prompts, tmp, detectors, args.model)

        started = time.perf_counter()
        ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        init_s = time.perf_counter() - started
        context = DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.CRITICAL)
        ray_runs = {}
        for workers in (1, 2):
            first, total = bench_ray(ray, gate, src, tmp / f"out-{workers}", workers, args.repeats)
            ray_runs[workers] = {"first_batch_s": first, "seconds": total}
        cluster_cpus = ray.cluster_resources().get("CPU")
        ray.shutdown()
        load_after = os.getloadavg()

    rows = [
        ("local (Gate.scan, warm)", local_s, None),
        ("local CLI (vgate scan, jsonl)", local_cli_s, None),
        *(
            (f"ray, {w} worker{'s' * (w > 1)}", r["seconds"], r["first_batch_s"])
            for w, r in ray_runs.items()
        ),
    ]
    print(f"\n{n:,} prompts, detectors {used}, {cores} cores, Ray {ray.__version__}")
    print(f"ray.init (local, {cluster_cpus:g} CPUs): {init_s:.2f} s; best of {args.repeats} runs")
    print(f"load average (1 min) before/after: {load_before[0]:.1f} / {load_after[0]:.1f}\n")
    print(f"{'engine':<32}{'seconds':>10}{'prompts/s':>12}{'first batch s':>15}")
    for name, seconds, first in rows:
        fb = f"{first:.2f}" if first is not None else "-"
        print(f"{name:<32}{seconds:>10.2f}{n / seconds:>12,.0f}{fb:>15}")

    result = {
        "benchmark": "ray_scale",
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python " + " ".join(["benchmarks/ray_scale.py", *sys.argv[1:]]),
        "prompts": n,
        "parquet_files": args.files,
        "detectors": used,
        "model": gate.model_ref if "model" in gate.detector_names else None,
        "rules_only": used == "rules",
        "cores": cores,
        "cpu": platform.processor() or platform.machine(),
        "versions": {
            "python": platform.python_version(),
            **{pkg: version(pkg) for pkg in ("vgate", "ray", "pyarrow", "numpy", "onnxruntime")},
        },
        "repeats": args.repeats,
        "load_average_1m": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
        "ray_init_s": round(init_s, 3),
        "ray_cluster_cpus": cluster_cpus,
        "local": {"seconds": round(local_s, 3), "prompts_per_s": round(n / local_s, 1)},
        "local_cli": {
            "seconds": round(local_cli_s, 3),
            "prompts_per_s": round(n / local_cli_s, 1),
        },
        "ray": {
            str(w): {
                "workers": w,
                "seconds": round(r["seconds"], 3),
                "prompts_per_s": round(n / r["seconds"], 1),
                "first_batch_s": round(r["first_batch_s"], 3),
            }
            for w, r in ray_runs.items()
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
