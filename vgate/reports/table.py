"""Table report (rich): one row per flagged prompt, then input errors and a summary line."""

from __future__ import annotations

import os
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from vgate.core.findings import ALLOW, BLOCK, WARN, ScanMeta, ScanSummary, Verdict
from vgate.inputs.prompts import printable
from vgate.reports.common import one_line, record_location

PROMPT_WIDTH = 50
"""Prompts are collapsed to one line and shortened to this many characters."""

MAX_ROWS = 10_000
"""Rows kept for the table; further flagged prompts are counted, not shown (use json/jsonl)."""

_STYLE = {BLOCK: "bold red", WARN: "yellow", ALLOW: "dim"}


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def make_console(stream: TextIO) -> Console:
    """A console on ``stream``: colour only on a terminal (and not with ``NO_COLOR``).

    Off a terminal (CI logs, files) the width is ``$COLUMNS`` or 120.
    """
    terminal = _is_terminal(stream)
    width = None if terminal or os.environ.get("COLUMNS") else 120
    return Console(
        file=stream,
        force_terminal=terminal,
        no_color=not terminal or None,
        highlight=False,
        width=width,
        soft_wrap=False,
    )


class TableReporter:
    """Keeps the rows of flagged prompts (all prompts with ``show_all``) as short strings."""

    def __init__(self, stream: TextIO, *, show_all: bool = False, max_rows: int = MAX_ROWS) -> None:
        self.console = make_console(stream)
        self.show_all = show_all
        self.max_rows = max_rows
        self._rows: list[tuple[str, str, str, str]] = []
        """(location, categories, decision, prompt) per shown prompt."""
        self._hidden = 0

    def start(self, meta: ScanMeta) -> None:
        """Nothing to write up front: the table is printed once its column widths are known."""

    def add(self, verdict: Verdict) -> None:
        if not (verdict.flagged or self.show_all):
            return
        if len(self._rows) >= self.max_rows:
            self._hidden += 1
            return
        record = verdict.record
        hits = verdict.hits or []
        categories = ", ".join(f"{h.category} {float(h.score):.2f}" for h in hits) or "-"
        decision = verdict.decision.upper() if verdict.flagged else verdict.decision
        if verdict.suppressed_by:
            decision = f"{decision} ({verdict.suppressed_by})"
        where = printable(record_location(record))
        prompt = printable(one_line(record.text, PROMPT_WIDTH))
        self._rows.append((where, categories, decision, prompt))

    def finish(self, summary: ScanSummary) -> None:
        out = self.console
        if self._rows:
            table = Table(show_lines=False, header_style="bold", expand=False)
            table.add_column("Location", overflow="fold", ratio=3)
            table.add_column("Categories (score)", overflow="fold", ratio=2)
            table.add_column("Action", overflow="fold", ratio=1)
            table.add_column("Prompt", overflow="fold", ratio=4, max_width=PROMPT_WIDTH + 2)
            for where, categories, decision, prompt in self._rows:
                style = _STYLE.get(decision.split(" ", 1)[0].lower(), "")
                table.add_row(Text(where), Text(categories), Text(decision, style), Text(prompt))
            out.print(table)
        if self._hidden:
            out.print(Text(f"... {self._hidden} more rows not shown; use --format json for all."))
        if summary.errors:
            out.print(Text("Input errors:", style="bold red"))
            for issue in summary.errors:
                out.print(Text(f"  {printable(str(issue))}"))
            if summary.error_count > len(summary.errors):
                hidden = summary.error_count - len(summary.errors)
                out.print(Text(f"  ... {hidden} more input errors not shown"))
        for note in summary.notes:
            out.print(Text(f"Note: {printable(note)}", style="yellow"))
        out.print(Text(summary_line(summary), style="bold"))
        out.file.flush()


def summary_line(summary: ScanSummary) -> str:
    """``Scanned N prompts: B blocked, W warned, S suppressed, E errors in T s``."""
    noun = "prompt" if summary.scanned == 1 else "prompts"
    if summary.videos or summary.video_errors:
        noun = f"items ({summary.videos} video{'' if summary.videos == 1 else 's'})"
    return (
        f"Scanned {summary.scanned} {noun}: {summary.blocked} blocked, {summary.warned} warned, "
        f"{summary.suppressed} suppressed, {summary.error_count} errors in {summary.seconds:.2f} s"
    )
