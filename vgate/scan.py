"""inputs -> detectors -> policy -> reports: one streaming, batched pass."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from vgate.findings import ALLOW, BLOCK, WARN, InputIssue, Record, ScanSummary, Verdict
from vgate.gate import Gate
from vgate.inputs.prompts import ReadItem
from vgate.reports import Reporter

BATCH_SIZE = 1024
"""Records per detector call: large enough for the model to group prompts of similar length."""
FAIL_ON = (BLOCK, WARN, "never")


def apply_baseline(verdict: Verdict, known: set[tuple[str, str]]) -> None:
    """Waive a verdict whose every hit is already in the baseline report."""
    if not verdict.flagged or not known:
        return
    if all((hit.category, verdict.fingerprint) in known for hit in verdict.hits):
        verdict.decision = ALLOW
        verdict.suppressed_by = "baseline"
        verdict.reasons.append("waived by baseline")


def _batches(
    items: Iterable[ReadItem], size: int
) -> Iterator[tuple[list[Record], list[InputIssue]]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield (
            [x for x in chunk if isinstance(x, Record)],
            [x for x in chunk if isinstance(x, InputIssue)],
        )


def run_scan(
    items: Iterable[ReadItem],
    gate: Gate,
    reporter: Reporter,
    *,
    baseline: set[tuple[str, str]] | None = None,
    on_issue: Callable[[InputIssue], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> ScanSummary:
    """Scan every record, report every verdict in input order, and count them.

    Input issues are collected in the summary (the first ``MAX_KEPT_ERRORS`` are kept and passed
    to ``on_issue`` as they happen); they never stop the scan. Call ``reporter.start`` first.
    """
    summary = ScanSummary()
    started = time.perf_counter()
    for records, issues in _batches(items, batch_size):
        for issue in issues:
            if summary.add_error(issue) and on_issue:
                on_issue(issue)
        if not records:
            continue
        for verdict in gate.judge(records):
            if baseline:
                apply_baseline(verdict, baseline)
            summary.add(verdict)
            reporter.add(verdict)
        if on_progress:
            on_progress(len(records))
    summary.seconds = time.perf_counter() - started
    reporter.finish(summary)
    return summary


def exit_code(summary: ScanSummary, fail_on: str) -> int:
    """0 = nothing at or above ``fail_on``; 1 = findings; 2 = some input could not be read."""
    if summary.error_count:
        return 2
    if fail_on == BLOCK and summary.blocked:
        return 1
    if fail_on == WARN and (summary.blocked or summary.warned):
        return 1
    return 0
