"""Report formats of ``vgate scan``: streaming reporters behind one tiny interface."""

from __future__ import annotations

from typing import Protocol, TextIO

from vgate.core.findings import ScanMeta, ScanSummary, Verdict
from vgate.errors import VgateError

FORMATS: tuple[str, ...] = ("table", "json", "jsonl", "sarif")


class Reporter(Protocol):
    """Receives the run's meta, then every verdict in input order, then the summary."""

    def start(self, meta: ScanMeta) -> None:
        """Called once before the first verdict."""
        ...

    def add(self, verdict: Verdict) -> None:
        """Called once per scanned record, in input order."""
        ...

    def finish(self, summary: ScanSummary) -> None:
        """Called once at the end; ``summary.errors`` holds the unreadable files and lines."""
        ...


def make_reporter(fmt: str, stream: TextIO, *, show_all: bool = False) -> Reporter:
    """The reporter of format ``fmt`` (one of ``FORMATS``) writing to ``stream``.

    ``show_all``: the table lists every prompt, not only flagged ones; SARIF also lists prompts
    whose hits were waived (with a ``suppressions`` entry). JSON and JSONL always list every
    prompt.
    """
    if fmt == "table":
        from vgate.reports.table import TableReporter

        return TableReporter(stream, show_all=show_all)
    if fmt == "json":
        from vgate.reports.json_report import JsonReporter

        return JsonReporter(stream, show_all=show_all)
    if fmt == "jsonl":
        from vgate.reports.jsonl_report import JsonlReporter

        return JsonlReporter(stream, show_all=show_all)
    if fmt == "sarif":
        from vgate.reports.sarif import SarifReporter

        return SarifReporter(stream, show_all=show_all)
    raise VgateError(f"unknown report format '{fmt}'; expected one of: {', '.join(FORMATS)}")
