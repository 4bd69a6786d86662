"""``vgate scan``: wire inputs, gate, reporter and exit code together."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from vgate.core.findings import InputIssue, ScanMeta, ScanSummary
from vgate.core.gate import Gate
from vgate.core.runner import FAIL_ON, exit_code, run_scan
from vgate.errors import VgateError
from vgate.inputs import FORMATS as INPUT_FORMATS
from vgate.inputs import InputFile, count_lines, expand_paths, has_video, read_inputs, text_records
from vgate.inputs.prompts import printable
from vgate.inputs.video import MAX_SAMPLES
from vgate.progress import progress_bar
from vgate.reports import FORMATS, make_reporter

if TYPE_CHECKING:
    from vgate.core.video import VideoScanner

PROGRESS_MIN_LINES = 5_000


@dataclass
class ScanOptions:
    """The options of ``vgate scan`` as parsed by the CLI."""

    paths: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    policy: str = "default"
    detectors: str | None = None
    model: str | None = None
    output_format: str = "table"
    output: Path | None = None
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


def _check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise VgateError(f"{option} must be one of {', '.join(choices)}, got '{value}'")


def _validate(o: ScanOptions) -> None:
    _check_choice("--format", o.output_format, FORMATS)
    _check_choice("--fail-on", o.fail_on, FAIL_ON)
    _check_choice("--input-format", o.input_format, INPUT_FORMATS)
    if not o.paths and not o.texts:
        raise VgateError(
            "nothing to scan: give prompt or video files, directories, - for stdin, or --text"
        )
    if o.frames is not None and o.fps is not None:
        raise VgateError("give --frames or --fps, not both")
    if o.frames is not None and not 1 <= o.frames <= MAX_SAMPLES:
        raise VgateError(f"--frames must be from 1 to {MAX_SAMPLES:,}, got {o.frames}")
    if o.fps is not None and not 0.001 <= o.fps <= 1000:
        raise VgateError(f"--fps must be from 0.001 to 1000, got {o.fps:g}")
    if o.labels is not None and o.frame_model is None:
        raise VgateError("--labels needs --frame-model")


@contextlib.contextmanager
def _open_output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    try:
        stream = path.open("w", encoding="utf-8", newline="\n")
    except OSError as exc:
        raise VgateError(f"{path}: cannot write report ({exc.strerror or exc})") from None
    with stream:
        yield stream


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
        gate.policy, frames=o.frames, fps=o.fps, frame_model=o.frame_model, labels=o.labels
    )
    scanner = VideoScanner(checker)
    scanner.warm_up()
    return scanner


def _print_issue(issue: InputIssue) -> None:
    print(f"vgate: error: {issue}", file=sys.stderr)


def summary_line(summary: ScanSummary) -> str:
    """One line for stderr: counts and time."""
    noun = "prompts"
    if summary.videos or summary.video_errors:
        noun = f"items ({summary.videos:,} video{'' if summary.videos == 1 else 's'})"
    return (
        f"vgate: scanned {summary.scanned:,} {noun}: {summary.blocked:,} blocked, "
        f"{summary.warned:,} warned, {summary.suppressed:,} suppressed, "
        f"{summary.error_count:,} input errors in {summary.seconds:.2f} s"
    )


def scan_command(o: ScanOptions) -> int:
    """Run a scan as the CLI does and return the exit code."""
    if o.engine != "local" or o.ray_address or o.ray_workers:
        from vgate.commands.scan_ray import scan_ray_command

        return scan_ray_command(o)
    _validate(o)
    gate = Gate(o.policy, detectors=o.detectors, model=o.model)
    if o.baseline is not None:
        from vgate.core.baseline import load_baseline

        gate.baseline = load_baseline(o.baseline)
    gate.warm_up()
    files = list(expand_paths(o.paths))  # the one walk of the input paths
    videos = _video_scanner(o, gate, files)
    frame_detector = videos.checker.detector if videos is not None else None
    meta = ScanMeta(
        policy=o.policy,
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
    with _open_output(o.output) as stream, _progress(o, files) as on_progress:
        reporter = make_reporter(o.output_format, stream, show_all=o.show_all)
        reporter.start(meta)
        summary = run_scan(
            items,
            gate,
            reporter,
            on_issue=_print_issue,
            on_progress=on_progress,
            videos=videos,
        )
    for note in summary.notes:
        print(f"vgate: warning: {note}", file=sys.stderr)
    if summary.error_count > len(summary.errors):
        hidden = summary.error_count - len(summary.errors)
        print(f"vgate: error: ... {hidden:,} more input errors not shown", file=sys.stderr)
    if not o.quiet and (o.output is not None or o.output_format != "table"):
        print(summary_line(summary), file=sys.stderr)
    return exit_code(summary, o.fail_on)
