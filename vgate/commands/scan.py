"""``vgate scan``: wire inputs, gate, reporter and exit code together."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

from vgate.core.findings import InputIssue, ScanMeta, ScanSummary
from vgate.core.gate import Gate
from vgate.core.runner import FAIL_ON, exit_code, run_scan
from vgate.errors import VgateError
from vgate.inputs import FORMATS as INPUT_FORMATS
from vgate.inputs import (
    STDIN,
    InputFile,
    count_lines,
    expand_paths,
    has_video,
    read_inputs,
    text_records,
)
from vgate.inputs.prompts import printable
from vgate.inputs.selection import FileSelection, GlobSet, changed_files, read_ignore_file
from vgate.inputs.video import MAX_SAMPLES
from vgate.policy.discovery import IGNORE_FILE, choose_policy, find_ignore_file
from vgate.policy.sections import MAX_TIME_BUDGET
from vgate.progress import progress_bar
from vgate.reports import FORMATS
from vgate.reports.output import ReportTarget, open_reports, parse_report_option, refuse_inputs
from vgate.reports.table import summary_line as table_summary_line
from vgate.terminal import terminal_safe

if TYPE_CHECKING:
    from vgate.core.video import VideoScanner
    from vgate.policy import Policy

PROGRESS_MIN_LINES = 5_000


@dataclass
class ScanOptions:
    """The options of ``vgate scan`` as parsed by the CLI."""

    paths: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    policy: str | None = None
    """``--policy``; None: the discovered config (``vgate.policy.discovery``), else default."""
    no_config: bool = False
    excludes: list[str] = field(default_factory=list)
    """``--exclude``: gitignore-style globs of files not to read."""
    diff_base: str | None = None
    """``--diff-base``: read only files changed against this git ref."""
    respect_include: bool = False
    """``--respect-include``: named files too must match the policy's ``files.include``."""
    detectors: str | None = None
    model: str | None = None
    output_format: str = "table"
    output: Path | None = None
    reports: list[str] = field(default_factory=list)
    """``--report FORMAT=PATH``: further reports written by the same scan."""
    fail_on: str = "block"
    baseline: Path | None = None
    column: str | None = None
    field: str | None = None
    input_format: str = "auto"
    show_all: bool = False
    progress: bool | None = None
    quiet: bool = False
    engine: str = "local"
    """``local`` (this process) or ``ray`` (Ray Data; see ``vgate.commands.scan_ray``)."""
    ray_address: str | None = None
    ray_workers: int | None = None
    frames: int | None = None
    """``--frames``: sample this many frames per video (overrides the policy)."""
    fps: float | None = None
    """``--fps``: sample this many frames per second of video (overrides the policy)."""
    frame_model: str | None = None
    """``--frame-model``: an ONNX frame classifier (or ``nudenet``)."""
    labels: str | None = None
    """``--labels``: the YAML mapping the frame model's outputs to categories."""
    video_time_budget: float | None = None
    """``--video-time-budget``: seconds of frame checks per video (overrides the policy)."""


def _check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise VgateError(f"{option} must be one of {', '.join(choices)}, got '{value}'")


def _validate(o: ScanOptions) -> None:
    _check_choice("--format", o.output_format, FORMATS)
    _check_choice("--fail-on", o.fail_on, FAIL_ON)
    _check_choice("--input-format", o.input_format, INPUT_FORMATS)
    if o.paths.count(STDIN) > 1:
        raise VgateError("- (standard input) can be given only once")
    if STDIN in o.paths and sys.stdin is None:
        raise VgateError("- reads standard input, but standard input is closed")
    if o.frames is not None and o.fps is not None:
        raise VgateError("give --frames or --fps, not both")
    if o.frames is not None and not 1 <= o.frames <= MAX_SAMPLES:
        raise VgateError(f"--frames must be from 1 to {MAX_SAMPLES:,}, got {o.frames}")
    if o.fps is not None and not 0.001 <= o.fps <= 1000:
        raise VgateError(f"--fps must be from 0.001 to 1000, got {o.fps:g}")
    budget = o.video_time_budget
    if budget is not None and not 0.001 <= budget <= MAX_TIME_BUDGET:
        raise VgateError(f"--video-time-budget must be from 0.001 to {MAX_TIME_BUDGET:g} s")
    if o.labels is not None and o.frame_model is None:
        raise VgateError("--labels needs --frame-model")


def _paths_to_scan(o: ScanOptions, policy: Policy) -> list[str]:
    """The paths given, else the policy file's folder when its ``files.include`` names files."""
    if o.paths or o.texts:
        return o.paths
    if policy.files.include and policy.files.root is not None:
        return [os.path.relpath(policy.files.root)]
    raise VgateError(
        "nothing to scan: give prompt or video files, directories, - for stdin, or --text "
        "(or list them under files.include in .vgate.yaml)"
    )


def _selection(o: ScanOptions, policy: Policy) -> FileSelection:
    """Excludes from --exclude, .vgateignore and the policy; the policy's includes; --diff-base."""
    select = FileSelection(include_named=o.respect_include)
    if o.excludes:
        select.excludes.append(GlobSet.of(Path.cwd(), o.excludes, "--exclude"))
    ignore_file = None if o.no_config else find_ignore_file()
    if ignore_file is not None:
        globs = read_ignore_file(ignore_file)
        select.excludes.append(GlobSet.of(ignore_file.parent, globs, IGNORE_FILE))
    root = policy.files.root or Path.cwd()
    if policy.files.exclude:
        select.excludes.append(GlobSet.of(root, policy.files.exclude, "files.exclude"))
    if policy.files.include:
        select.include = GlobSet.of(root, policy.files.include, "files.include")
    if o.diff_base is not None:
        select.changed = changed_files(o.diff_base)
    return select


def _select(found: Iterable[InputFile], select: FileSelection, named: list[str]) -> list[InputFile]:
    """The expanded inputs that ``select`` keeps (a path given on the command line is named)."""
    given = {printable(arg) for arg in named}
    return [
        item
        for item in found
        if isinstance(item, InputIssue)
        or item[1] is None
        or select.allows(item[1], named=item[0] in given)
    ]


def report_targets(o: ScanOptions) -> list[ReportTarget]:
    """The reports of a scan: ``--format``/``--output``, then each ``--report``."""
    return [ReportTarget(o.output_format, o.output), *map(parse_report_option, o.reports)]


def _check_outputs(o: ScanOptions, targets: list[ReportTarget], files: list[InputFile]) -> None:
    """Refuse a report path that is also an input (or another report), before any is opened."""
    outputs = [t.path for t in targets if t.path is not None]
    if not outputs:
        return
    inputs: list[Path | str | None] = [
        item[1] for item in files if not isinstance(item, InputIssue)
    ]
    others = (o.baseline, o.policy, o.labels, o.frame_model)
    inputs += [item for item in others if item is not None and Path(item).is_file()]
    refuse_inputs(outputs, inputs)


@contextlib.contextmanager
def _progress(o: ScanOptions, files: list[InputFile]) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar when stderr is a terminal, plain log lines with ``--progress``
    elsewhere (CI logs), or None when it should stay quiet."""
    terminal = sys.stderr.isatty()
    show = o.progress if o.progress is not None else terminal
    total = count_lines(files) if show else None
    if o.progress is None and total is not None and total < PROGRESS_MIN_LINES:
        show = False
    if not show:
        yield None
    elif terminal:
        with progress_bar("scanning prompts", total, True) as advance:
            yield advance
    else:
        yield LogProgress(total)


class LogProgress:
    """Progress for logs: one line per tenth of ``total`` lines (per ``step`` prompts when the
    total is unknown), so a CI log gets a few lines, not a redrawn bar."""

    def __init__(self, total: int | None, step: int = 100_000) -> None:
        self.total = total
        self.step = max(1, total // 10) if total else step
        self.done = 0
        self.started = time.perf_counter()

    def __call__(self, n: int) -> None:
        before, self.done = self.done, self.done + n
        if before // self.step == self.done // self.step:
            return
        rate = self.done / max(time.perf_counter() - self.started, 1e-9)
        of = f" of ~{self.total:,} lines" if self.total else ""
        print(f"vgate: {self.done:,} prompts scanned{of} ({rate:,.0f}/s)", file=sys.stderr)


def _video_scanner(o: ScanOptions, gate: Gate, files: list[InputFile]) -> VideoScanner | None:
    """The video scanner with its frame detector loaded (a broken model fails here, before any
    report), or None when no input is a video and no frame model was asked for."""
    if not has_video(files) and o.frame_model is None:
        return None
    from vgate.core.video import FrameChecker, VideoScanner

    checker = FrameChecker(
        gate.policy,
        frames=o.frames,
        fps=o.fps,
        frame_model=o.frame_model,
        labels=o.labels,
        time_budget=o.video_time_budget,
    )
    scanner = VideoScanner(checker)
    scanner.warm_up()
    return scanner


def _print_issue(issue: InputIssue) -> None:
    print(f"vgate: error: {terminal_safe(str(issue))}", file=sys.stderr)


def summary_line(summary: ScanSummary) -> str:
    """The table's summary line, for stderr: ``vgate: scanned 3 prompts: ...``."""
    line = table_summary_line(summary)
    return f"vgate: {line[0].lower()}{line[1:]}"


def scan_command(o: ScanOptions) -> int:
    """Run a scan as the CLI does and return the exit code."""
    started = time.perf_counter()
    policy = choose_policy(o.policy, o.no_config).ref
    o = dataclasses.replace(o, policy=policy)
    if o.engine != "local" or o.ray_address or o.ray_workers:
        from vgate.commands.scan_ray import scan_ray_command

        if o.excludes or o.diff_base:
            raise VgateError("--exclude and --diff-base are not available with --engine ray")
        return scan_ray_command(o)
    _validate(o)
    targets = report_targets(o)
    gate = Gate(policy, detectors=o.detectors, model=o.model)
    configured = not o.paths and not o.texts
    o = dataclasses.replace(o, paths=_paths_to_scan(o, gate.policy))
    select = _selection(o, gate.policy)
    files = _select(expand_paths(o.paths), select, o.paths)  # the one walk of the input paths
    _check_outputs(o, targets, files)
    if configured and not any(not isinstance(i, InputIssue) for i in files):
        globs = ", ".join(gate.policy.files.include)
        raise VgateError(
            f"{o.policy}: files.include ({globs}) matches no prompt or video file; "
            "give paths or fix the globs"
        )
    if o.baseline is not None:
        from vgate.core.baseline import load_baseline

        gate.baseline = load_baseline(o.baseline)
    gate.warm_up()
    videos = _video_scanner(o, gate, files)
    frame_detector = videos.checker.detector if videos is not None else None
    meta = ScanMeta(
        policy=policy,
        detectors=[*gate.detector_names, *([frame_detector.name] if frame_detector else [])],
        command_line=["vgate", *(printable(arg) for arg in sys.argv[1:])],
        start_time_utc=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        fail_on=o.fail_on,
        working_directory=str(Path.cwd()),
    )
    items = chain(
        text_records(o.texts),
        read_inputs(files, input_format=o.input_format, column=o.column, field=o.field),
    )
    with open_reports(targets, show_all=o.show_all) as reporter, _progress(o, files) as on_progress:
        reporter.start(meta)
        summary = run_scan(
            items,
            gate,
            reporter,
            on_issue=_print_issue,
            on_progress=on_progress,
            videos=videos,
            started=started,
        )
    for note in summary.notes:
        print(f"vgate: warning: {terminal_safe(note)}", file=sys.stderr)
    if not o.quiet:
        for note in select.notes():
            print(f"vgate: note: {terminal_safe(note)}", file=sys.stderr)
    if summary.error_count > len(summary.errors):
        hidden = summary.error_count - len(summary.errors)
        print(f"vgate: error: ... {hidden:,} more input errors not shown", file=sys.stderr)
    if not o.quiet and (o.output is not None or o.output_format != "table"):
        print(summary_line(summary), file=sys.stderr)
    return exit_code(summary, o.fail_on)
