"""Report formats of ``vgate scan``: streaming reporters behind one tiny interface."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TextIO

from vgate.core.findings import ScanMeta, ScanSummary, Verdict
from vgate.errors import VgateError


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


ReporterFactory = Callable[[TextIO, bool], Reporter]
"""Builds a reporter writing to a stream; the flag is ``show_all``."""


def _table(stream: TextIO, show_all: bool) -> Reporter:
    from vgate.reports.table import TableReporter

    return TableReporter(stream, show_all=show_all)


def _json(stream: TextIO, show_all: bool) -> Reporter:
    from vgate.reports.json_report import JsonReporter

    return JsonReporter(stream, show_all=show_all)


def _jsonl(stream: TextIO, show_all: bool) -> Reporter:
    from vgate.reports.jsonl_report import JsonlReporter

    return JsonlReporter(stream, show_all=show_all)


def _sarif(stream: TextIO, show_all: bool) -> Reporter:
    from vgate.reports.sarif import SarifReporter

    return SarifReporter(stream, show_all=show_all)


REPORTERS: dict[str, ReporterFactory] = {
    "table": _table,
    "json": _json,
    "jsonl": _jsonl,
    "sarif": _sarif,
}
"""Report formats by name (``--format``); a format's module is imported only when used."""
FORMATS: tuple[str, ...] = tuple(REPORTERS)


def make_reporter(fmt: str, stream: TextIO, *, show_all: bool = False) -> Reporter:
    """The reporter of format ``fmt`` (one of ``FORMATS``) writing to ``stream``.

    ``show_all``: the table lists every prompt, not only flagged ones; SARIF also lists prompts
    whose hits were waived (with a ``suppressions`` entry). JSON and JSONL always list every
    prompt.
    """
    factory = REPORTERS.get(fmt)
    if factory is None:
        raise VgateError(f"unknown report format '{fmt}'; expected one of: {', '.join(FORMATS)}")
    return factory(stream, show_all)
