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

_INERT = str.maketrans(
    {
        ch: f"\\u{ord(ch):04x}"
        for ch in (
            *map(chr, range(0x7F, 0xA0)),  # DEL and C1 controls (NEL is a line break)
            *"\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e",  # bidi marks, overrides
            *"\u2066\u2067\u2068\u2069",  # bidi isolates
            *"\u2028\u2029",  # line and paragraph separators
        )
    }
)
"""Characters JSON may hold raw but a terminal or ``splitlines`` would act on: written as
``\\uXXXX`` escapes (the parsed text is unchanged)."""


def dumps(obj: object) -> str:
    """Compact UTF-8 JSON on one line, whatever ``str.splitlines`` counts as a line break.

    NaN is refused (not valid JSON); NEL, LS and PS are escaped so JSONL stays one item a line,
    and DEL, C1 controls and bidi controls so that a report printed on a terminal stays inert
    (JSON escapes C0 controls itself); a lone surrogate (not encodable as UTF-8) makes the whole
    value ASCII-escaped.
    """
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False)
    if LONE_SURROGATE.search(text):
        return json.dumps(obj, ensure_ascii=True, allow_nan=False)
    return text.translate(_INERT)


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
