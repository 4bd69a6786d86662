"""JSONL report: one JSON object per scanned prompt, then one ``{"summary": ...}`` line."""

from __future__ import annotations

from typing import TextIO

from vgate.core.findings import ScanMeta, ScanSummary, Verdict
from vgate.reports.common import REPORT_FORMAT_VERSION, TOOL, meta_item, summary_item, verdict_item
from vgate.reports.json_report import dumps


class JsonlReporter:
    """Writes each item as it comes; the last line holds the summary, the meta and the tool."""

    def __init__(self, stream: TextIO, *, show_all: bool = False) -> None:
        self.stream = stream
        self.show_all = show_all
        self._meta: ScanMeta | None = None

    def start(self, meta: ScanMeta) -> None:
        self._meta = meta

    def add(self, verdict: Verdict) -> None:
        self.stream.write(dumps(verdict_item(verdict)) + "\n")

    def finish(self, summary: ScanSummary) -> None:
        last = {
            "summary": summary_item(summary),
            "meta": meta_item(self._meta) if self._meta else None,
            "tool": TOOL,
            "format_version": REPORT_FORMAT_VERSION,
        }
        self.stream.write(dumps(last) + "\n")
        self.stream.flush()
