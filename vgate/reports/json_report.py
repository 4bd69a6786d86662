"""JSON report: one document, streamed item by item so memory stays flat on any input size."""

from __future__ import annotations

import json
from typing import TextIO

from vgate.core.findings import ScanMeta, ScanSummary, Verdict
from vgate.inputs.prompts import LONE_SURROGATE
from vgate.reports.common import (
    REPORT_FORMAT_VERSION,
    TOOL,
    meta_item,
    summary_item,
    verdict_item,
)

_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def dumps(obj: object) -> str:
    """Compact UTF-8 JSON on one line, whatever ``str.splitlines`` counts as a line break.

    NaN is refused (not valid JSON); NEL, LS and PS are escaped so JSONL stays one item a line;
    a lone surrogate (not encodable as UTF-8) makes the whole value ASCII-escaped.
    """
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False)
    if LONE_SURROGATE.search(text):
        return json.dumps(obj, ensure_ascii=True, allow_nan=False)
    return text.translate(_LINE_BREAKS)


class JsonReporter:
    """Writes ``{"tool", "format_version", "meta", "results": [...], "summary"}``.

    The head is written by ``start``, one item per line by ``add``, the tail by ``finish``; the
    whole output is a single valid JSON document.
    """

    def __init__(self, stream: TextIO, *, show_all: bool = False) -> None:
        self.stream = stream
        self.show_all = show_all
        self._count = 0

    def start(self, meta: ScanMeta) -> None:
        head = (
            f'{{"tool": {dumps(TOOL)}, "format_version": {REPORT_FORMAT_VERSION}, '
            f'"meta": {dumps(meta_item(meta))}, "results": ['
        )
        self.stream.write(head)

    def add(self, verdict: Verdict) -> None:
        self.stream.write(("\n" if self._count == 0 else ",\n") + dumps(verdict_item(verdict)))
        self._count += 1

    def finish(self, summary: ScanSummary) -> None:
        tail = f'], "summary": {dumps(summary_item(summary))}}}\n'
        self.stream.write(("\n" if self._count else "") + tail)
        self.stream.flush()
