"""Report formats of ``vgate scan``: streaming reporters behind one tiny interface."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol, TextIO

from vgate.errors import VgateError

if TYPE_CHECKING:
    from vgate.core.findings import ScanMeta, ScanSummary, Verdict

REPORTERS: dict[str, str] = {
    "table": "vgate.reports.table:TableReporter",
    "json": "vgate.reports.json_report:JsonReporter",
    "jsonl": "vgate.reports.jsonl_report:JsonlReporter",
    "sarif": "vgate.reports.sarif:SarifReporter",
    "github": "vgate.reports.github:GithubReporter",
    "junit": "vgate.reports.junit:JunitReporter",
    "gitlab": "vgate.reports.gitlab:GitlabReporter",
}
"""Format name -> ``module:class`` of its reporter, imported when used. A new format is one
module with a reporter class (``__init__(stream, *, show_all)``) and one entry here."""

FORMATS: tuple[str, ...] = tuple(REPORTERS)


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
    if fmt not in REPORTERS:
        raise VgateError(f"unknown report format '{fmt}'; expected one of: {', '.join(FORMATS)}")
    module, _, name = REPORTERS[fmt].partition(":")
    reporter_class = getattr(importlib.import_module(module), name)
    return reporter_class(stream, show_all=show_all)
