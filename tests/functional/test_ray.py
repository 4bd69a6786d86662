"""Ray Data: ``scan_dataset`` and ``vgate scan --engine ray`` on a local 2-CPU Ray.

One Ray instance serves the whole module (session fixture); no external cluster. Executions are
few and small: Ray's per-execution overhead (actor start-up) dominates on two cores.
"""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import CliResult
from vgate.categories import CATEGORY_IDS
from vgate.core.gate import Gate
from vgate.errors import MissingExtraError, VgateError
from vgate.integrations.ray import (
    ERROR,
    OUTPUT_COLUMNS,
    SCORE_COLUMNS,
    describe_failure,
    plan_pool,
    scan_dataset,
)

DETECTORS = None
"""The default detectors (rules + the shipped model): a missing model fails, never falls back."""

SAFE = [
    "a cat on a skateboard",
    "clouds rolling over mountains",
    "children building a sandcastle",
    "a chef plating a dessert",
    "a red fox running",
    "an astronaut floating",
    "blood orange slices on a wooden table",
    "a golden retriever catching a frisbee",
    "a ballet dancer spinning",
    "a steam train crossing a bridge",
]
UNSAFE = [
    "a bloody knife fight",
    "a naked woman dancing",
    "a zombie horde attacking a village, horror movie",
    "a swastika banner at a rally",
    "a grotesque melting face",
    "a decapitated soldier",
    "a demon crawling out of the wall, nightmare",
]
PLACES = [
    "at sunset",
    "in a dark alley",
    "on the beach",
    "in fresh snow",
    "above the earth",
    "in a busy kitchen",
    "on a rainy street",
    "in a misty forest",
    "at a village fair",
    "in a mirror",
]
STYLES = [
    "",
    ", cinematic",
    ", 4k, trending",
    ", in the style of a watercolor",
    ", drone shot",
    ", slow motion",
    ", black and white",
    ", anime style",
]


def make_prompts(n: int, seed: int = 7) -> list[str]:
    """``n`` distinct prompts (subject x place x style, drawn without replacement, no two the
    same text), about one in three unsafe, in a seeded order."""
    rng = random.Random(seed)

    def combos(subjects: list[str]) -> list[str]:
        return [f"{s} {p}{st}" for s in subjects for p in PLACES for st in STYLES]

    n_unsafe = round(n * 0.35)
    prompts = rng.sample(combos(UNSAFE), n_unsafe) + rng.sample(combos(SAFE), n - n_unsafe)
    rng.shuffle(prompts)
    return prompts


def test_make_prompts_are_distinct() -> None:
    prompts = make_prompts(1_000)
    assert len(set(prompts)) == 1_000
    assert 0.3 < sum(any(p.startswith(u) for u in UNSAFE) for p in prompts) / 1_000 < 0.4


STARTS = 5
"""Ray waits a fixed 30 s for its raylet to register, which a loaded 2-core machine can miss:
the local instance gets this many tries (the tests themselves wait on no clock)."""


@pytest.fixture(scope="session")
def ray_local():
    ray = pytest.importorskip("ray")
    from ray.data import DataContext

    for attempt in range(STARTS):
        try:
            ray.init(
                num_cpus=2,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
            )
            break
        except Exception as exc:  # Ray's fixed 30 s raylet start-up wait, missed on a busy CPU
            ray.shutdown()
            if attempt == STARTS - 1 or "timed out during startup" not in str(exc):
                raise
    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    yield ray
    ray.shutdown()


def _arrow_dataset(ray, rows: dict[str, list], blocks: int):
    import pyarrow as pa

    table = pa.table(rows)
    step = -(-table.num_rows // blocks)
    return ray.data.from_arrow([table.slice(i, step) for i in range(0, table.num_rows, step)])


# --- pure helpers (no Ray execution) ------------------------------------------------------------


def test_plan_pool_leaves_a_cpu_for_io():
    assert (plan_pool(2).max_size, plan_pool(2).cpus_per_actor) == (1, 1.0)
    assert plan_pool(16).max_size == 15
    assert plan_pool(16, num_cpus=4).max_size == 3
    fitted = plan_pool(2, concurrency=2)
    assert fitted.fitted and fitted.max_size == 2 and fitted.cpus_per_actor == pytest.approx(0.5)
    assert fitted.threads == 1
    single = plan_pool(1)
    assert single.max_size == 1 and single.cpus_per_actor == pytest.approx(0.5)
    auto = plan_pool(8, concurrency=(1, 32))
    assert (auto.min_size, auto.max_size, auto.fitted) == (1, 32, False)
    with pytest.raises(VgateError, match="positive"):
        plan_pool(4, concurrency=0)


def test_describe_failure_is_one_line():
    class Wrapped(Exception):
        def __init__(self, cause: BaseException) -> None:
            super().__init__("\x1b[36mray::ReadJSON()\x1b[39m (pid=1)\n  File x\nboom")
            self.cause = cause

    message = describe_failure(Wrapped(ValueError("Unexpected character\nFailed to read")))
    assert message == "Unexpected character"


def test_without_ray_the_message_names_the_extra(tmp_path: Path):
    """``sys.modules['ray'] = None``: the API and the CLI say how to install the extra."""
    (tmp_path / "p.jsonl").write_text('{"prompt": "a cat"}\n', encoding="utf-8")
    code = (
        "import sys\n"
        "sys.modules['ray'] = None\n"
        "from vgate.errors import MissingExtraError\n"
        "from vgate.integrations.ray import scan_dataset\n"
        "try:\n"
        "    scan_dataset(object())\n"
        "except MissingExtraError as exc:\n"
        "    print('API:', exc)\n"
        "from vgate.cli import main\n"
        f"sys.argv = ['vgate', 'scan', {str(tmp_path / 'p.jsonl')!r}, '--engine', 'ray',\n"
        f"            '--output', {str(tmp_path / 'out')!r}]\n"
        "main()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2, proc.stderr
    assert "API: this command needs the 'ray' package" in proc.stdout
    assert "pip install 'vgate-cli[ray]'" in proc.stdout
    assert proc.stderr.strip() == (
        "vgate: error: this command needs the 'ray' package; install it with: "
        "pip install 'vgate-cli[ray]'"
    )
    assert issubclass(MissingExtraError, VgateError)


def test_cli_refuses_sarif_and_non_empty_output(vgate_main, tmp_path: Path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "a cat"}\n', encoding="utf-8")
    out = tmp_path / "out"
    result: CliResult = vgate_main(
        "scan", str(prompts), "--engine", "ray", "--format", "sarif", "--output", str(out)
    )
    assert result.code == 2
    assert "--format sarif is not available with --engine ray" in result.stderr
    assert "25,000" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    out.mkdir()
    (out / "old.parquet").write_bytes(b"x")
    result = vgate_main("scan", str(prompts), "--engine", "ray", "--output", str(out))
    assert result.code == 2
    assert "output directory is not empty" in result.stderr
    result = vgate_main("scan", str(prompts), "--ray-address", "auto", "-o", str(tmp_path / "x"))
    assert result.code == 2
    assert "need --engine ray" in result.stderr


def test_cli_unreadable_file_fails_before_work(vgate_main, tmp_path: Path):
    pytest.importorskip("pyarrow")
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.parquet").write_bytes(b"not a parquet file at all")
    out = tmp_path / "out"
    result = vgate_main("scan", str(inputs), "--engine", "ray", "--output", str(out))
    assert result.code == 2
    assert result.stderr.startswith(f"vgate: error: {inputs / 'a.parquet'}: not a readable parquet")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists(), "nothing may be written before the inputs are checked"
    result = vgate_main("scan", str(tmp_path / "missing"), "--engine", "ray", "-o", str(out))
    assert result.code == 2
    assert "no such file or directory" in result.stderr


# --- scan_dataset on the local Ray --------------------------------------------------------------


def test_distributed_scan_matches_local_scan(ray_local):
    """Same scores (1e-5) and decisions as ``Gate.scan`` on 1,000 distinct prompts, 2 workers."""
    prompts = make_prompts(1_000)
    assert len(set(prompts)) == len(prompts)
    gate = Gate("default", detectors=DETECTORS)
    local = gate.scan(prompts)
    ds = _arrow_dataset(ray_local, {"id": list(range(len(prompts))), "prompt": prompts}, 8)
    scanned = scan_dataset(ds, "prompt", gate, batch_size=200, concurrency=2, num_cpus=0.5)
    table = scanned.to_arrow_refs()
    import pyarrow as pa
    import ray

    result = pa.concat_tables(ray.get(table)).sort_by("id")
    assert result.num_rows == len(prompts)
    assert result.column_names == ["id", "prompt", *OUTPUT_COLUMNS]
    assert result.column("prompt").to_pylist() == prompts
    got = np.stack([result.column(c).to_numpy() for c in SCORE_COLUMNS], axis=1)
    expected = np.stack([v.scores for v in local])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert result.column("decision").to_pylist() == [v.decision for v in local]
    assert result.column("categories").to_pylist() == [
        [h.category for h in v.hits] if v.flagged else [] for v in local
    ]
    assert result.column("reasons").to_pylist() == [v.reasons for v in local]
    assert result.column("error").null_count == len(prompts)
    decisions = set(result.column("decision").to_pylist())
    assert {"block", "warn", "allow"} <= decisions, "the prompt mix must exercise every action"


def test_malformed_rows_become_error_entries(ray_local):
    import pandas as pd

    values = ["a bloody knife fight", None, 5, "a cat on a skateboard", b"bytes", float("nan")]
    frame = pd.DataFrame({"id": range(len(values)), "prompt": pd.Series(values, dtype=object)})
    ds = ray_local.data.from_pandas(frame)
    rows = sorted(
        scan_dataset(ds, policy="default", detectors="rules", concurrency=1).take_all(),
        key=lambda r: r["id"],
    )
    assert [r["decision"] for r in rows] == ["block", ERROR, ERROR, "allow", ERROR, ERROR]
    assert [r["error"] for r in rows] == [
        None,
        "prompt is null",
        "prompt is int, not a string",
        None,
        "prompt is bytes, not a string",
        "prompt is null",
    ]
    assert rows[0]["categories"] == ["violent_bloody"]
    assert rows[0]["score_violent_bloody"] == 1.0
    assert all(r[c] is None for r in rows if r["decision"] == ERROR for c in SCORE_COLUMNS)


def test_problems_are_one_line_errors_before_work(ray_local, tmp_path: Path):
    import pyarrow as pa

    data = ray_local.data
    with pytest.raises(VgateError, match=r"no column 'prompt' \(columns: text, id\)") as info:
        scan_dataset(data.from_arrow(pa.table({"text": ["a"], "id": [1]})), detectors="rules")
    assert "\n" not in str(info.value)
    with pytest.raises(VgateError, match="the dataset is empty"):
        scan_dataset(data.from_items([]), detectors="rules")
    empty = data.from_arrow(pa.table({"prompt": pa.array([], pa.string())}))
    with pytest.raises(VgateError, match="the dataset is empty"):
        scan_dataset(empty, detectors="rules")
    with pytest.raises(VgateError, match="already has vgate's output column"):
        scan_dataset(
            data.from_arrow(pa.table({"prompt": ["a"], "decision": ["x"]})), detectors="rules"
        )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a"}\n{not json\n', encoding="utf-8")
    with pytest.raises(VgateError, match="cannot read the dataset") as info:
        scan_dataset(data.read_json(str(bad), lines=True), detectors="rules")
    assert "\n" not in str(info.value)
    with pytest.raises(VgateError, match="unknown policy"):
        scan_dataset(data.from_arrow(pa.table({"prompt": ["a"]})), policy="nope")


# --- the CLI with --engine ray ------------------------------------------------------------------


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_cli_parquet_directory(ray_local, vgate_main, tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    prompts = make_prompts(600, seed=11)
    inputs = tmp_path / "in"
    (inputs / "part").mkdir(parents=True)
    pq.write_table(pa.table({"id": range(300), "prompt": prompts[:300]}), inputs / "a.parquet")
    pq.write_table(
        pa.table({"id": range(300, 600), "prompt": prompts[300:]}), inputs / "part" / "b.parquet"
    )
    out = tmp_path / "out"
    result = vgate_main("scan", str(inputs), "--engine", "ray", "-d", "rules", "-o", str(out))
    verdicts = Gate("default", detectors="rules").scan(prompts)
    blocked = sum(v.decision == "block" for v in verdicts)
    warned = sum(v.decision == "warn" for v in verdicts)
    assert result.code == 1, result.stderr
    assert f"scanned 600 prompts with Ray: {blocked} blocked, {warned} warned" in result.stderr
    assert "flagged per category:" in result.stderr
    written = pq.read_table(out).sort_by("id")
    assert written.num_rows == 600
    assert written.column("decision").to_pylist() == [v.decision for v in verdicts]
    summary = json.loads((out / "_vgate_summary.json").read_text(encoding="utf-8"))
    assert (summary["scanned"], summary["blocked"], summary["warned"]) == (600, blocked, warned)
    assert set(summary["per_category"]) == set(CATEGORY_IDS)


def test_cli_jsonl_directory_exit_codes(ray_local, vgate_main, tmp_path: Path):
    inputs = tmp_path / "in"
    safe = [{"id": i, "text": SAFE[i % len(SAFE)]} for i in range(40)]
    _write_jsonl(inputs / "a.jsonl", safe[:20])
    _write_jsonl(inputs / "b.jsonl", [*safe[20:], {"id": 99, "text": None}])
    (inputs / "empty.jsonl").write_text("", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = vgate_main("scan", str(inputs), "--engine", "ray", "-d", "rules", "-o", str(out))
    # one row without a prompt and one empty file: written, reported, exit 2 (as a local scan)
    assert result.code == 2, result.stderr
    assert "scanned 40 prompts with Ray: 0 blocked, 0 warned" in result.stderr
    assert "1 rows with errors" in result.stderr
    assert "empty.jsonl: empty file; skipped" in result.stderr
    assert "1 rows could not be scanned (e.g. prompt is null)" in result.stderr
    rows = [
        json.loads(line)
        for path in sorted(out.glob("*.json"))
        if not path.name.startswith("_")
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    assert len(rows) == 41
    assert {r["decision"] for r in rows} == {"allow", ERROR}
    # only safe prompts and no errors: exit 0; with --fail-on never findings do not fail either
    (inputs / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in safe[20:]))
    (inputs / "empty.jsonl").unlink()
    out2 = tmp_path / "out2.jsonl"
    result = vgate_main(
        "scan",
        str(inputs / "*.jsonl"),
        "--engine",
        "ray",
        "-o",
        str(out2),
        "-d",
        "rules",
        "--field",
        "text",
        "-q",
    )
    assert (result.code, result.stderr) == (0, "")


def test_cli_counts_match_a_local_scan(ray_local, vgate_main, tmp_path: Path):
    """The summary of ``--engine ray`` equals the local engine's on the same jsonl file."""
    prompts = make_prompts(300, seed=3)
    data = tmp_path / "p.jsonl"
    _write_jsonl(data, [{"prompt": p} for p in prompts])
    local = vgate_main("scan", str(data), "-d", "rules", "--format", "json", "--fail-on", "warn")
    summary = json.loads(local.stdout)["summary"]
    out = tmp_path / "out"
    distributed = vgate_main(
        "scan", str(data), "--engine", "ray", "-d", "rules", "-o", str(out), "--fail-on", "warn"
    )
    written = json.loads((out / "_vgate_summary.json").read_text(encoding="utf-8"))
    assert distributed.code == local.code == 1
    for key in ("scanned", "blocked", "warned", "suppressed"):
        assert written[key] == summary[key], key
    assert written["per_category"] == summary["per_category"]


def test_dataset_summary_counts_every_error_row_for_the_exit_code() -> None:
    from vgate.core.runner import exit_code
    from vgate.integrations.ray import DatasetSummary

    summary = DatasetSummary(rows=10, scanned=3, errors=7, error_examples=["row 1: prompt is null"])
    local = summary.to_scan_summary()
    assert local.error_count == 7 and len(local.errors) == 1
    assert exit_code(local, "never") == 2


def test_blank_prompt_rows_are_error_rows_not_silent_passes() -> None:
    import pyarrow as pa

    from vgate.integrations.ray import scan_table

    table = pa.table({"prompt": ["a cat", "", "   ", "gore"]})
    out = scan_table(Gate("default", detectors="rules"), table, "prompt").to_pydict()
    assert out["decision"] == ["allow", "error", "error", "block"]
    assert out["error"] == [None, "prompt is empty", "prompt is empty", None]
