"""GitHub Actions annotations: one workflow command per finding, as ruff's ``github`` format.

``::error file=prompts/a.txt,line=2,title=vgate/pornographic::Pornographic (pornographic): score
0.91 >= threshold 0.50, action block. Prompt: "..."`` for a hit whose action is ``block``,
``::warning`` for ``warn``; input errors are ``::error`` with ``title=vgate/input-error``. GitHub
shows them on the file and line in the pull request and the run summary, without code scanning.
Values are escaped as the workflow-command syntax requires, so no prompt or file name can end a
command early or start another one.
"""

from __future__ import annotations

import re
from typing import TextIO

from vgate.core.findings import BLOCK, VIDEO_ERROR, WARN, InputIssue, ScanMeta, ScanSummary, Verdict
from vgate.inputs.prompts import printable
from vgate.reports.common import (
    hit_message,
    is_pseudo_source,
    record_location,
    relative_source,
)

COMMANDS = {BLOCK: "error", WARN: "warning"}

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""C0/C1 controls other than LF and CR (escaped as %0A/%0D): shown as ``\\xNN``, so that an
escape sequence in a prompt reaches neither a terminal nor the log viewer."""


def _visible(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def escape_data(text: str) -> str:
    """The message of a workflow command: ``%``, CR and LF escaped."""
    return _visible(printable(text)).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A property value of a workflow command: as data, plus ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(command: str, message: str, **properties: str | int | None) -> str:
    """``::command key=value,...::message`` with every value escaped (None values left out)."""
    props = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in properties.items()
        if value is not None
    )
    return f"::{command}{' ' + props if props else ''}::{escape_data(message)}"


class GithubReporter:
    """Writes one annotation per (flagged prompt, hit) as it comes, input errors at the end.

    With ``show_all``, waived findings are written as ``::notice`` annotations.
    """

    def __init__(self, stream: TextIO, *, show_all: bool = False) -> None:
        self.stream = stream
        self.show_all = show_all
        self.working_directory = "."

    def start(self, meta: ScanMeta) -> None:
        self.working_directory = meta.working_directory

    def _where(self, source: str, line: int | None) -> dict[str, str | int | None]:
        """``file`` relative to the working directory (none for stdin and --text), ``line``."""
        if is_pseudo_source(source):
            return {"file": None, "line": None}
        path, _ = relative_source(source, self.working_directory)
        return {"file": path, "line": line if line and line >= 1 else None}

    def add(self, verdict: Verdict) -> None:
        waived = self.show_all and verdict.suppressed_by
        if not (verdict.flagged or waived):
            return
        record = verdict.record
        for hit in verdict.hits:
            command = "notice" if waived else COMMANDS.get(hit.action)
            if command is None:
                continue
            message = hit_message(verdict, hit)
            if is_pseudo_source(record.source):
                message = f"{record_location(record)}: {message}"
            if waived:
                message += f" Waived by {verdict.suppressed_by}."
            line = workflow_command(
                command,
                message,
                **self._where(record.source, record.line),
                title=f"vgate/{hit.category}",
            )
            self.stream.write(line + "\n")

    def finish(self, summary: ScanSummary) -> None:
        for issue in summary.errors:
            self.stream.write(self._issue(issue) + "\n")
        for note in summary.notes:
            self.stream.write(workflow_command("warning", note, title="vgate/note") + "\n")
        self.stream.flush()

    def _issue(self, issue: InputIssue) -> str:
        title = "vgate/video-error" if issue.kind == VIDEO_ERROR else "vgate/input-error"
        message = str(issue) if is_pseudo_source(issue.source) else issue.message
        return workflow_command(
            "error", message, **self._where(issue.source, issue.line), title=title
        )
