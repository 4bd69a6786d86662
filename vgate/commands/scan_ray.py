"""``vgate scan --engine ray``: scan parquet/csv/jsonl prompt sets with Ray Data.

Inputs are read with Ray's own readers, scanned by :func:`vgate.integrations.ray.scan_dataset`
(the same :class:`~vgate.core.gate.Gate` as a local scan) and written with Ray's writers to a
parquet or jsonl directory. The summary and the exit code are those of a local scan: the counts
are read back from the written output (parquet: four small columns only).

Everything that can be checked before work starts is: options, input files (exist, readable, a
parquet footer, not all empty), the prompt column, the output directory (new or empty), the
policy and the model. SARIF is refused: see :data:`SARIF_REFUSAL`.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vgate.core.findings import InputIssue
from vgate.core.runner import FAIL_ON
from vgate.errors import VgateError
from vgate.inputs import files_under

ENGINES = ("local", "ray")
OUTPUT_FORMATS = ("parquet", "jsonl")
INPUT_FORMATS = ("auto", "parquet", "csv", "jsonl")
INPUT_EXTENSIONS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
SUMMARY_FILE = "_vgate_summary.json"
"""Written into the output directory; the leading ``_`` keeps Arrow and Spark readers off it."""
SARIF_REFUSAL = (
    "--format sarif is not available with --engine ray: SARIF points at file and line, which "
    "Ray's readers do not keep, and GitHub code scanning takes at most 25,000 results per run, "
    "far fewer than a Ray-sized prompt set flags. Write --format parquet or jsonl and query the "
    "'decision' column, or run a local scan (the default engine) on a sample for SARIF"
)
_SNIFF_BYTES = 1 << 16
_GLOB_CHARS = frozenset("*?[")


@dataclass
class RayInputs:
    """What ``--engine ray`` reads: files (or URIs) of one format."""

    paths: list[str]
    fmt: str
    header: list[str] | None = None
    """csv: the first file's header (the column types are fixed from it)."""
    skipped: list[InputIssue] = field(default_factory=list)
    """Empty files: left out, reported, and the exit code is 2 (as with a local scan)."""
    remote: bool = False


def _is_uri(path: str) -> bool:
    return "://" in path


def output_format(o: Any) -> str:
    """parquet or jsonl: ``--format``, else from the ``--output`` suffix (default parquet)."""
    fmt = o.output_format
    if fmt == "sarif":
        raise VgateError(SARIF_REFUSAL)
    if fmt == "json":
        raise VgateError("--engine ray writes --format parquet or jsonl (one object per line)")
    if fmt in OUTPUT_FORMATS:
        return fmt
    if fmt != "table":
        raise VgateError(f"--format must be one of parquet, jsonl with --engine ray, got '{fmt}'")
    suffix = Path(str(o.output)).suffix.lower()
    return "jsonl" if suffix in (".jsonl", ".json", ".ndjson") else "parquet"


def check_options(o: Any) -> str:
    """Refuse what the ray engine does not do; the output format."""
    if o.engine not in ENGINES:
        raise VgateError(f"--engine must be one of {', '.join(ENGINES)}, got '{o.engine}'")
    if o.engine != "ray":
        raise VgateError("--ray-address and --ray-workers need --engine ray")
    if o.ray_workers is not None and o.ray_workers < 1:
        raise VgateError(f"--ray-workers must be at least 1, got {o.ray_workers}")
    if o.fail_on not in FAIL_ON:
        raise VgateError(f"--fail-on must be one of {', '.join(FAIL_ON)}, got '{o.fail_on}'")
    if o.texts:
        raise VgateError("--text is not available with --engine ray; give parquet/csv/jsonl files")
    if "-" in o.paths:
        raise VgateError("stdin (-) is not available with --engine ray; give files or a directory")
    if not o.paths:
        raise VgateError("nothing to scan: give parquet, csv or jsonl files, directories or globs")
    if o.baseline is not None:
        raise VgateError("--baseline is not available with --engine ray; use the local engine")
    if o.output is None:
        raise VgateError("--engine ray needs --output DIR (a new or empty directory)")
    if o.input_format not in INPUT_FORMATS:
        raise VgateError(
            f"--input-format must be one of {', '.join(INPUT_FORMATS)} with --engine ray, "
            f"got '{o.input_format}'"
        )
    return output_format(o)


def _expand(arg: str) -> list[Path]:
    """Files named by one argument: a file, a directory (recursive) or a glob."""
    if any(ch in _GLOB_CHARS for ch in arg) and not Path(arg).exists():
        found = sorted(Path(p) for p in glob.glob(arg, recursive=True))
        files = [p for p in found if p.is_file()]
        if not files:
            raise VgateError(f"{arg}: no files match")
        return files
    path = Path(arg)
    if path.is_dir():
        files = files_under(path, INPUT_EXTENSIONS, skip_prefixes=(".", "_"))
        if not files:
            exts = ", ".join(INPUT_EXTENSIONS)
            raise VgateError(f"{arg}: directory has no parquet, csv or jsonl files ({exts})")
        return files
    if not path.exists():
        raise VgateError(f"{arg}: no such file or directory")
    return [path]


def _format_of(paths: list[str], requested: str) -> str:
    if requested != "auto":
        return requested
    fmts = {INPUT_EXTENSIONS.get(Path(p.split("?")[0]).suffix.lower()) for p in paths}
    if None in fmts:
        unknown = next(p for p in paths if INPUT_EXTENSIONS.get(Path(p).suffix.lower()) is None)
        raise VgateError(
            f"{unknown}: unknown file type; use --input-format parquet, csv or jsonl "
            "(txt is for the local engine)"
        )
    if len(fmts) > 1:
        raise VgateError(
            f"inputs mix {', '.join(sorted(f for f in fmts if f))}; scan one format per run "
            "or pass --input-format"
        )
    (fmt,) = fmts
    assert fmt is not None  # unknown suffixes were refused above
    return fmt


def _check_file(path: Path, fmt: str) -> tuple[bool, list[str] | None]:
    """(has rows, csv header) for one local file; unreadable files raise VgateError."""
    try:
        with path.open("rb") as raw:
            head = raw.read(_SNIFF_BYTES)
    except OSError as exc:
        raise VgateError(f"{path}: cannot open ({exc.strerror or exc})") from None
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_metadata(path).num_rows > 0, None
        except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise VgateError(f"{path}: not a readable parquet file ({first})") from None
    if not head.strip():
        return False, None
    if fmt == "csv":
        import csv
        import io

        text = head.decode("utf-8-sig", errors="replace")
        lines = [line for line in text.splitlines() if line.strip()]
        header = next(csv.reader(io.StringIO(lines[0])))
        return len(lines) > 1, header
    return True, None


def resolve_inputs(args: list[str], requested: str) -> RayInputs:
    """Expand and check the inputs before any Ray work; one format per run."""
    if any(_is_uri(a) for a in args):
        if not all(_is_uri(a) for a in args):
            raise VgateError("mix of local paths and URIs; give one kind per run")
        return RayInputs(list(args), _format_of(args, requested), remote=True)
    files = [p for arg in args for p in _expand(arg)]
    fmt = _format_of([str(p) for p in files], requested)
    inputs = RayInputs([], fmt)
    for path in files:
        has_rows, header = _check_file(path, fmt)
        if has_rows:
            inputs.paths.append(str(path))
            inputs.header = inputs.header or header
        elif fmt != "parquet":  # a parquet file with no rows is valid; a 0-byte text file is not
            inputs.skipped.append(InputIssue(str(path), "empty file; skipped"))
    if not inputs.paths:
        raise VgateError("the inputs are empty: no rows to scan")
    return inputs


def check_output(out: Path | str) -> None:
    """The output must be a new or empty directory (never mix old and new results)."""
    text = str(out)
    if _is_uri(text):
        import pyarrow.fs as pafs

        try:
            fs, root = pafs.FileSystem.from_uri(text)
            entries = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
        except Exception as exc:  # pyarrow raises per filesystem
            raise VgateError(f"{text}: cannot check the output location ({exc})") from None
        if entries:
            raise VgateError(f"{text}: output location is not empty; choose a new one")
        return
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise VgateError(f"{path}: exists and is not a directory; --output takes a directory")
    if path.is_dir() and any(path.iterdir()):
        raise VgateError(f"{path}: output directory is not empty; choose a new one")


def start_ray(ray: Any, address: str | None, progress: bool | None) -> None:
    """Connect to ``address`` / ``$RAY_ADDRESS``, else start Ray on this machine; quiet logs."""
    from ray.data import DataContext

    if not ray.is_initialized():
        try:
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
            )
        except Exception as exc:  # ConnectionError, RuntimeError, ...
            from vgate.integrations.ray import describe_failure

            where = address or os.environ.get("RAY_ADDRESS") or "a local Ray"
            raise VgateError(f"cannot start or reach {where}: {describe_failure(exc)}") from None
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)  # failures: one line
    context = DataContext.get_current()
    context.enable_progress_bars = bool(progress)
    context.print_on_execution_start = False


def read_inputs(ray: Any, inputs: RayInputs, wanted: str | None) -> tuple[Any, str]:
    """The Ray Dataset of the inputs and the prompt column to scan."""
    from vgate.inputs.prompts import pick_column
    from vgate.integrations.ray import describe_failure

    try:
        if inputs.fmt == "parquet":
            ds = ray.data.read_parquet(inputs.paths)
        elif inputs.fmt == "jsonl":
            ds = ray.data.read_json(inputs.paths, lines=True)  # pandas: mixed types stay objects
        else:
            ds = _read_csv(ray, inputs, wanted)
        names = list(ds.schema().names)
    except VgateError:
        raise
    except Exception as exc:  # Ray and Arrow raise many types; all mean "cannot read"
        raise VgateError(f"cannot read the inputs: {describe_failure(exc)}") from None
    column = pick_column(names, wanted)
    if column is None:
        what = f"no column '{wanted}'" if wanted else "no prompt, text or caption column"
        raise VgateError(f"the inputs have {what} (columns: {', '.join(names)}); use --column")
    return ds, column


def _read_csv(ray: Any, inputs: RayInputs, wanted: str | None) -> Any:
    """csv with the prompt column read as text (a column of numbers is still prompts)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from vgate.inputs.prompts import pick_column

    header = inputs.header
    if header is None:  # remote: let Arrow read the header
        header = list(ray.data.read_csv(inputs.paths[:1]).schema().names)
    column = pick_column(header, wanted)
    if column is None:
        return ray.data.read_csv(inputs.paths)  # read_inputs names the columns in its error
    options = pacsv.ConvertOptions(column_types={column: pa.string()})
    return ray.data.read_csv(inputs.paths, convert_options=options)


def write_output(ds: Any, out: str, fmt: str) -> None:
    """Run the scan and write it; a failure is one line, not a Ray traceback."""
    from vgate.integrations.ray import describe_failure

    try:
        if fmt == "parquet":
            ds.write_parquet(out)
        else:
            ds.write_json(out)
    except VgateError:
        raise
    except Exception as exc:  # a worker failure surfaces as a RayTaskError
        raise VgateError(f"the Ray scan failed: {describe_failure(exc)}") from None


def read_back(ray: Any, out: str, fmt: str) -> Any:
    """The written output, only the columns the summary needs."""
    columns = ["decision", "categories", "suppressed_by", "error"]
    if fmt == "parquet":
        return ray.data.read_parquet(out).select_columns(columns)
    import pyarrow as pa
    import pyarrow.json as pajson

    schema = pa.schema(
        [
            ("decision", pa.string()),
            ("categories", pa.list_(pa.string())),
            ("suppressed_by", pa.string()),
            ("error", pa.string()),
        ]
    )
    options = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    return ray.data.read_json(out, parse_options=options)


def write_summary_file(out: str, payload: dict[str, Any]) -> None:
    """``OUT/_vgate_summary.json``: the counts, for pipelines that do not read stderr."""
    import pyarrow.fs as pafs

    try:
        fs, root = pafs.FileSystem.from_uri(out if _is_uri(out) else str(Path(out).resolve()))
        with fs.open_output_stream(f"{root.rstrip('/')}/{SUMMARY_FILE}") as stream:
            stream.write(json.dumps(payload, indent=2).encode("utf-8") + b"\n")
    except Exception as exc:  # best effort: the scan itself is written
        print(f"vgate: warning: cannot write {SUMMARY_FILE} ({exc})", file=sys.stderr)


def summary_lines(summary: Any, out: str, fmt: str, skipped: list[InputIssue]) -> list[str]:
    """The stderr summary: the local scan's counts, per category, and where the output is."""
    lines = [
        f"vgate: scanned {summary.scanned:,} prompts with Ray: {summary.blocked:,} blocked, "
        f"{summary.warned:,} warned, {summary.suppressed:,} suppressed, "
        f"{summary.errors:,} rows with errors in {summary.seconds:.2f} s; wrote {fmt} to {out}"
    ]
    if summary.per_category:
        per = ", ".join(f"{cid} {n:,}" for cid, n in sorted(summary.per_category.items()))
        lines.append(f"vgate: flagged per category: {per}")
    for issue in skipped:
        lines.append(f"vgate: error: {issue}")
    if summary.errors:
        example = summary.error_examples[0] if summary.error_examples else "malformed prompt"
        lines.append(
            f"vgate: error: {summary.errors:,} rows could not be scanned (e.g. {example}); "
            "they have decision 'error' in the output"
        )
    return lines


def scan_ray_command(o: Any) -> int:
    """``vgate scan --engine ray``: check everything, scan with Ray, write, summarize."""
    from vgate.core.gate import Gate
    from vgate.core.runner import exit_code
    from vgate.integrations.ray import require_ray, scan_dataset, summarize_dataset

    out_fmt = check_options(o)
    ray = require_ray()  # first: without the extra there is no pyarrow either
    inputs = resolve_inputs(o.paths, o.input_format)
    out = str(o.output)
    check_output(out)
    gate = Gate(o.policy, detectors=o.detectors, model=o.model)
    gate.warm_up()
    started = time.perf_counter()
    start_ray(ray, o.ray_address, o.progress)
    ds, column = read_inputs(ray, inputs, o.column or o.field)
    scanned = scan_dataset(ds, column, gate, concurrency=o.ray_workers, check_empty=inputs.remote)
    write_output(scanned, out, out_fmt)
    summary = summarize_dataset(read_back(ray, out, out_fmt))
    summary.seconds = time.perf_counter() - started
    report = summary.to_scan_summary()
    report.errors.extend(inputs.skipped)
    write_summary_file(out, {"engine": "ray", "format": out_fmt, **summary.to_dict()})
    if not o.quiet:
        for line in summary_lines(summary, out, out_fmt, inputs.skipped):
            print(line, file=sys.stderr)
    return exit_code(report, o.fail_on)
