"""Peak memory and throughput of ``vgate scan -d rules`` on 10,000 and 1,000,000 prompts.

    python benchmarks/scan_memory.py [--lines 1000000] [--baseline-lines 10000]
                                     [--formats jsonl,sarif,table,json] [--flagged 0.03]

Each scan runs in a fresh ``vgate`` process writing its report to a temporary file; the peak
resident set size (``ru_maxrss``) of exactly that child comes from ``os.wait4``. A streaming scan
has flat memory: the 1M-line figure stays close to the 10k-line one. Every format is also run on
a 1M-line file with no flagged prompt, which separates the scan core (inputs, gate, loop) from
what a reporter keeps for its flagged prompts (the SARIF reporter keeps up to 25,000 results; the
table keeps up to 10,000 rows). Prints a table and writes benchmarks/results/scan_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from machine import vgate_command

RESULTS = Path(__file__).resolve().parent / "results" / "scan_memory.json"
FORMATS = ("jsonl", "sarif", "table", "json")

# fmt: off
_SUBJECTS = ["a red fox", "two astronauts", "an old fisherman", "a golden retriever", "a robot",
             "a street musician", "a paper boat", "a lighthouse keeper", "a flock of birds",
             "a chef", "a mountain biker", "a ballerina", "a vintage car", "a koi fish"]
_ACTIONS = ["walking through", "dancing in", "flying over", "exploring", "racing across",
            "sleeping in", "painting", "floating above", "cooking in", "waiting at"]
_PLACES = ["a snowy forest", "a neon city at night", "a quiet harbour", "the surface of Mars",
           "a sunflower field", "an abandoned train station", "a busy market", "a coral reef",
           "a misty valley", "a library full of candles"]
_STYLES = ["cinematic lighting", "35mm film", "slow motion", "drone shot", "watercolor style",
           "4k, highly detailed", "golden hour", "stop-motion animation", "handheld camera"]
_UNSAFE = ["covered in blood", "a naked figure", "a zombie horde", "nazi propaganda posters",
           "a gory massacre", "a deformed face", "a demonic ritual"]
# fmt: on


def make_prompts(path: Path, lines: int, flagged: float, seed: int = 0) -> int:
    """Write ``lines`` prompts (a share ``flagged`` of them unsafe); returns the unsafe count."""
    rng = random.Random(seed)
    unsafe = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        buf = []
        for i in range(lines):
            text = (
                f"{rng.choice(_SUBJECTS)} {rng.choice(_ACTIONS)} {rng.choice(_PLACES)}, "
                f"{rng.choice(_STYLES)}, take {i}"
            )
            if rng.random() < flagged:
                text += f", {rng.choice(_UNSAFE)}"
                unsafe += 1
            buf.append(text)
            if len(buf) >= 10_000:
                out.write("\n".join(buf) + "\n")
                buf.clear()
        if buf:
            out.write("\n".join(buf) + "\n")
    return unsafe


_SUMMARY = re.compile(
    r"scanned ([\d,]+) prompts: ([\d,]+) blocked, ([\d,]+) warned.* in ([\d.]+) s"
)


def run_scan(prompts: Path, fmt: str, out: Path) -> dict[str, Any]:
    """One ``vgate scan`` in a fresh process: peak RSS, wall time, and its summary line."""
    cmd = [*vgate_command(), "scan", "-d", "rules", "-f", fmt, "-o", str(out)]
    cmd += ["--fail-on", "never", "--no-progress", str(prompts)]
    stderr_path = out.with_suffix(".stderr")
    started = time.perf_counter()
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = stderr_path.read_text(encoding="utf-8", errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"vgate failed ({proc.returncode}): {' '.join(cmd)}\n{err[-2000:]}")
    match = _SUMMARY.search(err)
    if not match:
        raise SystemExit(f"no summary line from vgate:\n{err[-2000:]}")
    scanned, blocked, warned = (int(g.replace(",", "")) for g in match.groups()[:3])
    scan_seconds = float(match.group(4))
    peak_kib = usage.ru_maxrss  # KiB on Linux
    return {
        "format": fmt,
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "wall_s": round(wall, 2),
        "scan_s": round(scan_seconds, 2),
        "scanned": scanned,
        "blocked": blocked,
        "warned": warned,
        "prompts_per_s": round(scanned / scan_seconds) if scan_seconds else None,
        "report_mib": round(out.stat().st_size / 2**20, 1),
    }


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    try:
        from vgate import __version__

        info["vgate"] = __version__
    except ImportError:
        pass
    try:
        meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0]
        info["memory_total_gib"] = round(int(meminfo.split()[1]) / 2**20, 1)
    except (OSError, IndexError, ValueError):
        pass
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
        if model:
            info["cpu_model"] = model.group(1).strip()
    except OSError:
        pass
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--baseline-lines", type=int, default=10_000)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--flagged", type=float, default=0.03, help="share of unsafe prompts")
    parser.add_argument(
        "--clean-formats",
        default="sarif,table",
        help="formats also run on a large input without unsafe prompts (reporters that keep "
        "flagged prompts); empty for none",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    clean_formats = [f.strip() for f in args.clean_formats.split(",") if f.strip()]

    load_at_start = os.getloadavg()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vgate-bench-") as tmp:
        tmpdir = Path(tmp)
        inputs = {
            "baseline": (args.baseline_lines, args.flagged, formats),
            "large": (args.lines, args.flagged, formats),
            "large-clean": (args.lines, 0.0, clean_formats),
        }
        for name, (lines, flagged, run_formats) in inputs.items():
            if not run_formats:
                continue
            path = tmpdir / f"{name}.txt"
            unsafe = make_prompts(path, lines, flagged)
            print(f"{name}: {lines:,} prompts ({unsafe:,} unsafe), "
                  f"{path.stat().st_size / 2**20:.1f} MiB", file=sys.stderr)  # fmt: skip
            for fmt in run_formats:
                row = {"input": name, "lines": lines, "flagged_share": flagged}
                row.update(run_scan(path, fmt, tmpdir / f"{name}.{fmt}.out"))
                rows.append(row)
                print(f"  {fmt:5} peak {row['peak_rss_mib']:7.1f} MiB  "
                      f"{row['prompts_per_s'] or 0:>9,} prompts/s", file=sys.stderr)  # fmt: skip
                (tmpdir / f"{name}.{fmt}.out").unlink()

    by = {(r["input"], r["format"]): r for r in rows}
    for fmt in formats:
        base, large = by[("baseline", fmt)], by[("large", fmt)]
        large["growth_vs_baseline_mib"] = round(large["peak_rss_mib"] - base["peak_rss_mib"], 1)
        clean = by.get(("large-clean", fmt))
        if clean:
            growth = clean["peak_rss_mib"] - base["peak_rss_mib"]
            clean["growth_vs_baseline_mib"] = round(growth, 1)

    header = f"{'input':12} {'lines':>9} {'format':6} {'peak MiB':>9} {'+ vs 10k':>9} "
    header += f"{'scan s':>7} {'prompts/s':>10} {'flagged':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        growth = r.get("growth_vs_baseline_mib")
        print(
            f"{r['input']:12} {r['lines']:>9,} {r['format']:6} {r['peak_rss_mib']:>9.1f} "
            f"{'' if growth is None else f'{growth:+.1f}':>9} {r['scan_s']:>7.2f} "
            f"{r['prompts_per_s'] or 0:>10,} {r['blocked'] + r['warned']:>8,}"
        )
    result = {
        "benchmark": "scan_memory",
        "command": "vgate scan -d rules -f FORMAT -o FILE --fail-on never --no-progress PROMPTS",
        "measure": "peak RSS (ru_maxrss via os.wait4) of each vgate process",
        "machine": machine(),
        "load_average_1_5_15_min": {
            "start": [round(x, 2) for x in load_at_start],
            "end": [round(x, 2) for x in os.getloadavg()],
            "note": "other work on the machine slows prompts/s; peak RSS does not depend on it",
        },
        "runs": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
