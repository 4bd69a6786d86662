"""JUnit XML report, for the test-result views of GitLab, Jenkins and Azure Pipelines.

One ``<testsuite>`` per input file (stdin and ``--text`` are suites of their own), one
``<testcase>`` per flagged prompt (a file with none gets one passing test case for the whole
file), a ``<failure>`` per prompt whose decision fails the build (block; warn too with
``--fail-on warn``), an ``<error>`` per input error and, with ``--all``, a ``<skipped>`` test case
per waived prompt. Warnings that do not fail the build are listed in the suite's ``<system-out>``.
The suite attributes carry the counts of its test cases; its ``<properties>`` the counts of the
scan of that file (scanned, blocked, warned, suppressed).

The output is valid under both the Jenkins (xunit plugin) and the Ant JUnit schemas: only the
attributes and element order both accept (``tests/data/junit.xsd`` is that common subset).
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TextIO
from xml.sax.saxutils import escape, quoteattr

from vgate.core.findings import BLOCK, VIDEO_ERROR, WARN, InputIssue, ScanMeta, ScanSummary, Verdict
from vgate.reports.common import (
    hit_message,
    is_pseudo_source,
    location,
    pseudo_source,
    record_location,
)

_NOT_XML = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 cannot hold (most C0 controls, lone surrogates, U+FFFE/FFFF), and C1
controls, which it can but which no viewer should get: they are spelled out (``\\x1b``)."""


def xml_text(text: str) -> str:
    """``text`` with what XML cannot hold spelled out, then escaped for element content."""
    return escape(_NOT_XML.sub(_spell, text))


def xml_attr(text: str) -> str:
    """``text`` as a quoted attribute value (line breaks kept as character references)."""
    return quoteattr(_NOT_XML.sub(_spell, text))


def _spell(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


@dataclass
class _Suite:
    """The test cases of one input file, as XML strings, and its counts."""

    cases: list[str] = field(default_factory=list)
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    scanned: int = 0
    blocked: int = 0
    warned: int = 0
    suppressed: int = 0
    warnings: list[str] = field(default_factory=list)


class JunitReporter:
    """Keeps the test cases of flagged prompts per file; writes the document at ``finish``."""

    def __init__(self, stream: TextIO, *, show_all: bool = False) -> None:
        self.stream = stream
        self.show_all = show_all
        self._suites: dict[str, _Suite] = {}
        self._meta: ScanMeta | None = None

    def start(self, meta: ScanMeta) -> None:
        self._meta = meta

    @staticmethod
    def _suite_name(source: str) -> str:
        return pseudo_source(source) if is_pseudo_source(source) else source

    def _suite(self, source: str) -> _Suite:
        return self._suites.setdefault(self._suite_name(source), _Suite())

    def _fails(self, decision: str) -> bool:
        fail_on = self._meta.fail_on if self._meta else BLOCK
        return decision == BLOCK or (decision == WARN and fail_on == WARN)

    def add(self, verdict: Verdict) -> None:
        record = verdict.record
        suite = self._suite(record.source)
        suite.scanned += 1
        suite.blocked += verdict.decision == BLOCK
        suite.warned += verdict.decision == WARN
        suite.suppressed += bool(verdict.suppressed_by)
        if not (verdict.flagged or self.show_all):
            return
        where = record_location(record)
        messages = [hit_message(verdict, hit) for hit in verdict.hits] or [verdict.decision]
        body = ""
        if self._fails(verdict.decision):
            suite.failures += 1
            kind = ",".join(f"vgate/{hit.category}" for hit in verdict.hits if hit.action == BLOCK)
            kind = kind or ",".join(f"vgate/{hit.category}" for hit in verdict.hits)
            body = (
                f"<failure type={xml_attr(kind)} message={xml_attr(messages[0])}>"
                f"{xml_text(chr(10).join(messages))}</failure>"
            )
        elif verdict.suppressed_by:
            suite.skipped += 1
            body = f"<skipped message={xml_attr(f'waived by {verdict.suppressed_by}')}/>"
        elif verdict.flagged and verdict.hits:
            suite.warnings.extend(f"{where}: {message}" for message in messages)
        categories = ", ".join(hit.category for hit in verdict.hits)
        name = f"{where}: {categories} ({verdict.decision})" if categories else where
        suite.cases.append(self._case(name, body, self._suite_name(record.source)))

    @staticmethod
    def _case(name: str, body: str, classname: str) -> str:
        """One ``<testcase>`` (``classname``: its file) with its failure, error or skip."""
        attrs = f"classname={xml_attr(classname)} name={xml_attr(name)}"
        if not body:
            return f'    <testcase {attrs} time="0"/>'
        return f'    <testcase {attrs} time="0">{body}</testcase>'

    def _add_issue(self, issue: InputIssue) -> None:
        suite = self._suite(issue.source)
        suite.errors += 1
        kind = "vgate/video-error" if issue.kind == VIDEO_ERROR else "vgate/input-error"
        name = location(self._suite_name(issue.source), issue.line)
        body = (
            f"<error type={xml_attr(kind)} message={xml_attr(issue.message)}>"
            f"{xml_text(str(issue))}</error>"
        )
        suite.cases.append(self._case(name, body, self._suite_name(issue.source)))

    def finish(self, summary: ScanSummary) -> None:
        for issue in summary.errors:
            self._add_issue(issue)
        meta = self._meta
        stamp = (meta.start_time_utc if meta else "") or datetime.now(timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        timestamp = stamp.removesuffix("Z")
        host = socket.gethostname() or "localhost"
        write = self.stream.write
        write('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n')
        for index, (name, suite) in enumerate(self._suites.items()):
            if not suite.cases:
                note = f"{suite.scanned} prompt{'' if suite.scanned == 1 else 's'}, none flagged"
                suite.cases.append(self._case(f"{name}: {note}", "", name))
            write(
                f'  <testsuite name={xml_attr(name)} package="vgate" id="{index}" '
                f'tests="{len(suite.cases)}" failures="{suite.failures}" '
                f'errors="{suite.errors}" skipped="{suite.skipped}" time="0.000" '
                f"timestamp={xml_attr(timestamp)} hostname={xml_attr(host)}>\n"
            )
            write("    <properties>\n")
            properties = {
                "policy": meta.policy if meta else "",
                "fail_on": meta.fail_on if meta else BLOCK,
                "scanned": suite.scanned,
                "blocked": suite.blocked,
                "warned": suite.warned,
                "suppressed": suite.suppressed,
            }
            for key, value in properties.items():
                write(f"      <property name={xml_attr(key)} value={xml_attr(str(value))}/>\n")
            write("    </properties>\n")
            for case in suite.cases:
                write(case + "\n")
            out = "\n".join([*suite.warnings, *(f"Note: {note}" for note in summary.notes)])
            write(f"    <system-out>{xml_text(out)}</system-out>\n")
            write("    <system-err></system-err>\n")
            write("  </testsuite>\n")
        write("</testsuites>\n")
        self.stream.flush()
