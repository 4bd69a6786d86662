"""Prompt-model speed on prompts the model has not seen, as a user meets it.

    python benchmarks/model_speed.py --data ../shared/data/prompts_train_v2.csv

Prompts: the near-duplicate-free dev split of v2 (training/splits.py; no shipped v2 model trained
on it, and none has a near-copy in training), as they come (any length). Measured, with the
previous default as the baseline in the same run:

- model alone: prompts/s of ``detect`` in calls of 64 and in one call of 1,024 (best of
  ``--repeats``), and the share of prompts each cascade sends to its transformer; the default
  also as it ran before session calls were split by length (one padded width per call);
- ``vgate scan FILE --format jsonl -o OUT`` end to end (rules + model, report written): the
  steady-state rate is the marginal one between a quarter of the prompts and all of them (each
  the best of ``--repeats`` runs), so process start and model loading are not counted in it;
- the first verdict from process start: ``vgate scan --text`` (median of ``--startup-runs``) for
  a prompt the cascade's first model decides alone and for one it escalates.

The load average before and after is recorded; a figure taken on a busy machine says so. A fixed
matrix-multiply workload is timed before and after (``reference_matmul_gflops``): this machine's
speed drifts by a third between idle runs, and that figure shows which runs to compare.
Writes benchmarks/results/model_speed.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))

from machine import OtherLoad, reference_gflops, vgate_command

import vgate.detectors.prompt_model as prompt_model
from vgate.detectors.prompt_model import PromptModelDetector, cascade_escalates
from vgate.resources import DEFAULT_MODEL

RESULTS = Path(__file__).resolve().parent / "results"
DECIDED_ALONE = "a cat playing piano on a stage"
ESCALATED = "a knight in a battle"
ONE_WIDTH = "one padded width per call (before)"


@contextlib.contextmanager
def one_width_per_call():
    """Session calls split by count and token budget only, as before ``WIDTH_SPREAD``."""
    saved = prompt_model.WIDTH_SPREAD
    prompt_model.WIDTH_SPREAD = (float("inf"), 0)
    try:
        yield
    finally:
        prompt_model.WIDTH_SPREAD = saved


def unseen_prompts(data: Path, seed: int = 0, fraction: float = 0.2) -> list[str]:
    """The near-duplicate-free dev prompts of ``data`` (the split every v2 model left out)."""
    import splits
    import train_prompt_model as tpm

    rows = tpm.load_rows(data)
    _, dev_idx = splits.near_dup_free_split(rows.texts, rows.labels, fraction, seed, rows.sources)
    return [" ".join(rows.texts[i].split()) for i in dev_idx]


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


def scan_seconds(texts: list[str], tmp: Path, model: str) -> float:
    """Wall time of ``vgate scan FILE --format jsonl -o OUT`` over ``texts`` (one per line)."""
    src, out = tmp / f"prompts-{len(texts)}.txt", tmp / "out.jsonl"
    src.write_text("\n".join(texts) + "\n", encoding="utf-8")
    cmd = [*vgate_command(), "scan", str(src), "-f", "jsonl", "-o", str(out), "--model", model]
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    seconds = time.perf_counter() - start
    lines = out.read_text(encoding="utf-8").splitlines() if out.exists() else []
    if len(lines) < len(texts):
        raise SystemExit(f"vgate scan wrote {len(lines)} verdicts for {len(texts)} prompts")
    return seconds


def startup_times(runs: int, text: str, model: str) -> list[float]:
    """Wall time of ``vgate scan --text TEXT`` from process start to exit (the first verdict)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [*vgate_command(), "scan", "--text", text, "--format", "json", "--model", model],
            stdout=subprocess.DEVNULL,
            check=False,
        )
        times.append(time.perf_counter() - start)
    return times


def escalated_share(ref: str, texts: list[str]) -> float | None:
    """Share of ``texts`` a cascade sends to its second model (None: not a cascade)."""
    det = PromptModelDetector(ref)
    cascade = det._as_cascade()
    if cascade is None:
        return None
    first = cascade.first.detect(texts).scores
    return float(cascade_escalates(first, cascade.band).mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="prompts_train_v2.csv")
    p.add_argument(
        "--models",
        nargs="+",
        default=[DEFAULT_MODEL, "builtin:prompt-v2-static", "builtin:prompt-v2-minilm"],
    )
    p.add_argument("--baseline", default="builtin:prompt-cascade", help="the previous default")
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--startup-runs", type=int, default=5)
    p.add_argument(
        "--sections",
        nargs="+",
        choices=("alone", "scan", "startup"),
        default=["alone", "scan", "startup"],
        help="what to measure (default: all)",
    )
    p.add_argument("--out", type=Path, default=RESULTS / "model_speed.json")
    args = p.parse_args(argv)

    texts = unseen_prompts(args.data)
    rng = np.random.default_rng(0)
    sample = [texts[i] for i in rng.permutation(len(texts))[: args.n]]
    before_gflops = reference_gflops()
    load = OtherLoad().start()
    res: dict[str, Any] = {
        "prompts": f"near-duplicate-free dev split of {args.data.name} (unseen by the v2 models)",
        "cpu_count": os.cpu_count(),
        "n_prompts": len(sample),
        "repeats": args.repeats,
        "model_alone": {},
    }
    print(f"{len(sample)} unseen prompts; load average {load.load_average_before[0]:.2f}")
    runs: list[tuple[str, str, Callable[[], contextlib.AbstractContextManager[Any]]]] = [
        (ref, ref, contextlib.nullcontext) for ref in [*args.models, args.baseline]
    ]
    runs.insert(1, (args.models[0], f"{args.models[0]}, {ONE_WIDTH}", one_width_per_call))
    for ref, name, setting in runs if "alone" in args.sections else []:
        det = PromptModelDetector(ref)
        row: dict[str, Any] = {"escalated_share": escalated_share(ref, sample)}
        with setting():
            for call in (64, len(sample)):
                row[f"prompts_per_s_calls_of_{call}"] = round(
                    throughput(det, sample, call, args.repeats)
                )
        res["model_alone"][name] = row
        print(f"  {name:32s} {row}", flush=True)
        save(res, args.out)  # a run cut short still leaves what it measured

    e2e: dict[str, Any] = {"n_prompts": len(texts)}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for ref in (args.models[0], args.baseline) if "scan" in args.sections else ():
            quarter = texts[: len(texts) // 4]
            t_q = min(scan_seconds(quarter, tmp, ref) for _ in range(args.repeats))
            t_all = min(scan_seconds(texts, tmp, ref) for _ in range(args.repeats))
            e2e[ref] = {
                "seconds_quarter": round(t_q, 2),
                "seconds_all": round(t_all, 2),
                "overall_prompts_per_s": round(len(texts) / t_all),
                "steady_prompts_per_s": round((len(texts) - len(quarter)) / max(t_all - t_q, 1e-9)),
                "escalated_share": escalated_share(ref, texts),
            }
            print(f"  vgate scan --format jsonl, {ref}: {e2e[ref]}", flush=True)
    res["vgate_scan_jsonl"] = e2e
    save(res, args.out)
    startup = {}
    for ref in (args.models[0], args.baseline) if "startup" in args.sections else ():
        for label, text in (
            ("decided by the first model", DECIDED_ALONE),
            ("escalated", ESCALATED),
        ):
            times = startup_times(args.startup_runs, text, ref)
            startup[f"{ref}, {label}"] = {
                "text": text,
                "median_s": round(statistics.median(times), 3),
            }
            print(f"  first verdict {ref} ({label}): {statistics.median(times):.3f} s")
    res["first_verdict"] = startup
    load.stop()
    res |= load.record()
    res["reference_matmul_gflops"] = [round(before_gflops, 1), round(reference_gflops(), 1)]
    print(f"other processes used {load.other_cores} cores meanwhile; {res.get('note', 'idle')}")
    save(res, args.out)
    print(f"wrote {args.out}")
    return 0


def save(res: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
