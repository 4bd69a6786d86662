"""GitLab Code Quality report (the CodeClimate JSON subset GitLab reads), streamed.

A JSON array with one issue per (flagged prompt, hit category) and per input error:
``description``, ``check_name`` (``vgate/<category>``), ``fingerprint``, ``severity``
(``critical`` for block, ``minor`` for warn) and ``location.path`` / ``location.lines.begin``.
The fingerprint is built from the prompt's own fingerprint (the one SARIF and baselines use:
normalised text, so it survives line moves and re-spacing), the category and the file, so GitLab
matches an issue across runs and branches; repeats of one prompt in a file are numbered.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any, TextIO

from vgate.core.findings import BLOCK, VIDEO_ERROR, WARN, InputIssue, ScanMeta, ScanSummary, Verdict
from vgate.reports.common import (
    hit_message,
    is_pseudo_source,
    pseudo_source,
    record_location,
    relative_source,
)
from vgate.reports.json_report import dumps

SEVERITIES = {BLOCK: "critical", WARN: "minor"}
ERROR_SEVERITY = "critical"
"""An input that could not be read fails the scan (exit 2), as a block does."""
WAIVED_SEVERITY = "info"


def issue_fingerprint(*parts: str) -> str:
    """A stable hash of the parts (32 hex digits)."""
    data = "\0".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:32]


class GitlabReporter:
    """Writes ``[`` at start, each issue as it comes, the input errors and ``]`` at finish."""

    def __init__(self, stream: TextIO, *, show_all: bool = False) -> None:
        self.stream = stream
        self.show_all = show_all
        self.working_directory = "."
        self._count = 0
        self._seen: Counter[str] = Counter()

    def start(self, meta: ScanMeta) -> None:
        self.working_directory = meta.working_directory
        self.stream.write("[")

    def _path(self, source: str) -> str:
        if is_pseudo_source(source):
            return pseudo_source(source)
        return relative_source(source, self.working_directory)[0]

    def _write(self, issue: dict[str, Any]) -> None:
        self.stream.write(("\n" if self._count == 0 else ",\n") + dumps(issue))
        self._count += 1

    def _issue(
        self, check: str, description: str, severity: str, path: str, line: int | None, key: str
    ) -> dict[str, Any]:
        base = issue_fingerprint(check, path, key)
        self._seen[base] += 1
        occurrence = self._seen[base]
        fingerprint = base if occurrence == 1 else issue_fingerprint(base, str(occurrence))
        return {
            "type": "issue",
            "check_name": check,
            "description": description,
            "categories": ["Security"],
            "severity": severity,
            "fingerprint": fingerprint,
            "location": {"path": path, "lines": {"begin": line if line and line >= 1 else 1}},
        }

    def add(self, verdict: Verdict) -> None:
        waived = self.show_all and verdict.suppressed_by
        if not (verdict.flagged or waived):
            return
        record = verdict.record
        path = self._path(record.source)
        for hit in verdict.hits:
            severity = WAIVED_SEVERITY if waived else SEVERITIES.get(hit.action)
            if severity is None:
                continue
            description = hit_message(verdict, hit)
            if record.media is not None:
                description = f"{record_location(record)}: {description}"
            if waived:
                description += f" Waived by {verdict.suppressed_by}."
            check = f"vgate/{hit.category}"
            self._write(
                self._issue(check, description, severity, path, record.line, verdict.fingerprint)
            )

    def finish(self, summary: ScanSummary) -> None:
        for issue in summary.errors:
            self._write(self._error(issue))
        self.stream.write(("\n" if self._count else "") + "]\n")
        self.stream.flush()

    def _error(self, issue: InputIssue) -> dict[str, Any]:
        check = "vgate/video-error" if issue.kind == VIDEO_ERROR else "vgate/input-error"
        path = self._path(issue.source)
        return self._issue(check, str(issue), ERROR_SEVERITY, path, issue.line, issue.message)
