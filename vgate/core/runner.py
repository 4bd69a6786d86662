"""inputs -> detectors -> policy -> reports: one streaming, batched pass.

Video files in the input stream are scanned one at a time where they occur (frames and text
side, ``vgate.core.video``), so reports keep the input order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from vgate.core.findings import BLOCK, WARN, InputIssue, Record, ScanSummary, Verdict
from vgate.core.gate import Gate
from vgate.inputs import InputItem
from vgate.inputs.video import VideoItem
from vgate.reports import Reporter

if TYPE_CHECKING:
    from vgate.core.video import VideoScanner

BATCH_SIZE = 1024
"""Records per detector call: large enough for the model to group prompts of similar length."""
FAIL_ON = (BLOCK, WARN, "never")


def _batches(
    items: Iterable[InputItem], size: int
) -> Iterator[tuple[list[Record], list[InputIssue]] | VideoItem]:
    """Batches of up to ``size`` records (with the issues met on the way); a video ends the
    batch before it and comes on its own."""
    records: list[Record] = []
    issues: list[InputIssue] = []
    for item in items:
        if isinstance(item, VideoItem):
            if records or issues:
                yield records, issues
                records, issues = [], []
            yield item
            continue
        if isinstance(item, Record):
            records.append(item)
        else:
            issues.append(item)
        if len(records) + len(issues) >= size:
            yield records, issues
            records, issues = [], []
    if records or issues:
        yield records, issues


def run_scan(
    items: Iterable[InputItem],
    gate: Gate,
    reporter: Reporter,
    *,
    on_issue: Callable[[InputIssue], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
    videos: VideoScanner | None = None,
) -> ScanSummary:
    """Scan every record and video, report every verdict in input order, and count them.

    Input issues are collected in the summary (the first ``MAX_KEPT_ERRORS`` are kept and passed
    to ``on_issue`` as they happen); they never stop the scan. ``videos`` scans the video items
    (required when there are any). Verdicts come final from the gate (its baseline included).
    Call ``reporter.start`` first.
    """
    summary = ScanSummary()
    started = time.perf_counter()

    def issue(found: InputIssue) -> None:
        if summary.add_error(found) and on_issue:
            on_issue(found)

    def report(verdicts: list[Verdict]) -> None:
        for verdict in verdicts:
            summary.add(verdict)
            reporter.add(verdict)

    for batch in _batches(items, batch_size):
        if isinstance(batch, VideoItem):
            if videos is None:
                raise ValueError(f"run_scan: {batch.source} is a video; pass videos=VideoScanner")
            verdicts, problems, opened = videos.scan(batch, gate)
            summary.videos += opened
            report(verdicts)
            for problem in problems:
                issue(problem)
            continue
        records, issues = batch
        for found in issues:
            issue(found)
        if not records:
            continue
        report(gate.judge(records))
        if on_progress:
            on_progress(len(records))
    note = videos.note() if videos is not None else None
    if note:
        summary.notes.append(note)
    summary.seconds = time.perf_counter() - started
    reporter.finish(summary)
    return summary


def exit_code(summary: ScanSummary, fail_on: str) -> int:
    """0 = nothing at or above ``fail_on``; 1 = findings; 2 = a prompt input could not be read
    (fail closed), or videos could not be scanned and nothing else was."""
    if summary.failing_errors:
        return 2
    if summary.video_errors and not summary.scanned and not summary.videos:
        return 2
    if fail_on == BLOCK and summary.blocked:
        return 1
    if fail_on == WARN and (summary.blocked or summary.warned):
        return 1
    return 0
