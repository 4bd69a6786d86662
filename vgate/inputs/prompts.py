"""Prompt readers for txt, csv and jsonl, from files or stdin.

Each reader yields :class:`Record` for every prompt and :class:`InputIssue` for every line it
cannot read, and goes on with the rest: one bad line never loses the others.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import sys
from collections.abc import Iterator, Sequence
from typing import BinaryIO, cast

from vgate.core.findings import InputIssue, Record

MAX_RECORD_LINES = 1_000
"""A csv record (a quoted cell) may span at most this many physical lines."""
DEFAULT_COLUMNS = ("prompt", "text", "caption")
SUPPRESS_MARKER = re.compile(r"\s*#\s*vgate:\s*allow\s*$", re.IGNORECASE)
_SNIFF_BYTES = 8192
_UNDECODABLE = re.compile("[\udc80-\udcff]")
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""A lone surrogate: not encodable as UTF-8 (undecodable bytes, JSON ``\\udXXX`` escapes)."""

ReadItem = Record | InputIssue


def make_record(text: str, source: str, line: int, *, suppressed: bool = False) -> Record:
    """A record of the whole text: nothing is ever cut (the policy's ``long_prompt`` decides
    what a long prompt means)."""
    return Record(text=text, source=source, line=line, suppressed=suppressed)


def _undecodable(text: str) -> str | None:
    """Describe the first byte that was not valid UTF-8, or None."""
    match = _UNDECODABLE.search(text)
    if match is None:
        return None
    byte = ord(match.group(0)) - 0xDC00
    return f"not valid UTF-8 (byte 0x{byte:02x} at column {match.start() + 1}); skipped"


def printable(text: str) -> str:
    """``text`` with lone surrogates (undecodable bytes, JSON ``\\udXXX`` escapes) spelled out as
    ``\\udcff``, so that it can be written to a UTF-8 report."""
    if LONE_SURROGATE.search(text) is None:
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def lone_surrogate(text: str) -> str | None:
    """Describe a lone surrogate (not encodable as UTF-8) in a decoded value, or None."""
    match = LONE_SURROGATE.search(text)
    if match is None:
        return None
    return f"contains a lone surrogate (U+{ord(match.group(0)):04X}), not valid text; skipped"


def open_text(raw: BinaryIO, source: str) -> io.TextIOWrapper | InputIssue:
    """Wrap a byte stream for reading, or say why it is not a text file.

    Undecodable bytes become lone surrogates, so that readers can report them line by line.
    Lines end at LF (a CRLF's CR is stripped by the readers); a lone CR does not end a line, so
    line numbers are those of ``grep -n``, ``wc -l`` and editors that keep CR as a character.
    """
    if not hasattr(raw, "peek"):
        raw = io.BufferedReader(cast("io.RawIOBase", raw))  # e.g. a BytesIO as stdin
    head = raw.peek(_SNIFF_BYTES)[:_SNIFF_BYTES]
    if not head:
        return InputIssue(source, "empty file")
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return InputIssue(source, "binary file (contains NUL bytes), not a prompt list; skipped")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return InputIssue(source, "UTF-16 text is not supported; convert the file to UTF-8")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="\n")


def read_txt(stream: io.TextIOWrapper, source: str) -> Iterator[ReadItem]:
    """One prompt per line; blank lines and ``#`` comments are skipped.

    A line ending in ``# vgate: allow`` is scanned and reported, but its findings are waived.
    """
    for number, line in enumerate(stream, start=1):
        text = line.rstrip("\r\n")
        problem = _undecodable(text)
        if problem:
            yield InputIssue(source, problem, number)
            continue
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        marker = SUPPRESS_MARKER.search(stripped)
        if marker:
            stripped = stripped[: marker.start()].strip()
        yield make_record(stripped, source, number, suppressed=marker is not None)


def pick_column(names: list[str], wanted: str | None) -> str | None:
    """The column to read: ``wanted`` if given, else the first of prompt/text/caption present."""
    lowered = {n.strip().lower(): n for n in names}
    if wanted is not None:
        return wanted if wanted in names else lowered.get(wanted.lower())
    return next((lowered[c] for c in DEFAULT_COLUMNS if c in lowered), None)


class _OpenQuote(Exception):
    """A quoted csv cell still open at end of file or after ``MAX_RECORD_LINES`` lines."""

    def __init__(self, at_eof: bool) -> None:
        super().__init__()
        self.at_eof = at_eof


class _CsvLines:
    """The physical lines fed to ``csv.reader``, numbered, with the lines of the record being
    read kept so that a broken record can be read again from its second line.

    The reader asks for another line inside a record only while a quoted cell is open, so a
    request past end of file or past ``MAX_RECORD_LINES`` lines is an unterminated quote.
    """

    def __init__(self, stream: Iterator[str]) -> None:
        self._stream = stream
        self._again: list[str] = []
        self.record: list[str] = []
        self.start = 1
        """Line number of the record being read (its first physical line)."""

    def __iter__(self) -> _CsvLines:
        return self

    def __next__(self) -> str:
        if len(self.record) >= MAX_RECORD_LINES:
            raise _OpenQuote(at_eof=False)
        line = self._again.pop() if self._again else next(self._stream, None)
        if line is None:
            if self.record:
                raise _OpenQuote(at_eof=True)
            raise StopIteration
        self.record.append(line)
        return line

    def next_record(self) -> None:
        """The record read so far is done; the next line starts a new one."""
        self.start += len(self.record)
        self.record = []

    def retry_after_first_line(self) -> None:
        """Drop the broken record's first line and read its other lines again as new rows."""
        self._again.extend(reversed(self.record[1:]))
        self.start += 1
        self.record = []


def _csv_rows(
    stream: io.TextIOWrapper, source: str
) -> Iterator[tuple[int, list[str]] | InputIssue]:
    """``(line, row)`` per csv record, and an issue per broken record (named by the line it
    starts on); reading goes on after each issue, so no row is ever merged into another."""
    lines = _CsvLines(stream)
    reader = csv.reader(lines, strict=True)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except _OpenQuote as exc:
            where = "end of file" if exc.at_eof else f"{MAX_RECORD_LINES:,} lines"
            message = f"unterminated quote: the quoted cell opened here runs to {where}"
        except csv.Error as exc:
            message = f"malformed csv row: {exc}"
        else:
            yield lines.start, row
            lines.next_record()
            continue
        yield InputIssue(source, message, lines.start)
        lines.retry_after_first_line()
        reader = csv.reader(lines, strict=True)


def pick_value(
    names: list[str], values: Sequence[object], wanted: str | None, what: str
) -> tuple[str, object] | str | None:
    """The prompt of one csv row or jsonl object: ``(name, value)``, None when every candidate
    is blank, or a problem.

    With ``wanted`` (``--column`` / ``--field``) only that one is read. Otherwise the first of
    prompt/text/caption that is present and not blank: an empty ``prompt`` never hides a
    ``text`` beside it.
    """
    lowered = {n.strip().lower(): i for i, n in reversed(list(enumerate(names)))}
    if wanted is not None:
        index = names.index(wanted) if wanted in names else lowered.get(wanted.lower())
        candidates = [] if index is None else [index]
    else:
        candidates = [lowered[c] for c in DEFAULT_COLUMNS if c in lowered]
    if not candidates:
        if wanted:
            return f"no {what} '{printable(wanted)}'"
        return f"no prompt, text or caption {what}"
    for i in candidates:
        value = values[i] if i < len(values) else None
        if not (isinstance(value, str) and not value.strip()):
            return names[i], value
    return None


def read_csv(stream: io.TextIOWrapper, source: str, column: str | None) -> Iterator[ReadItem]:
    """Rows of a csv file with a header; ``line`` is the row's first physical line.

    A quoted cell left open (to end of file or past ``MAX_RECORD_LINES`` lines) is an issue
    named by the line it opens on, and the lines after that one are read as rows again.
    A row whose prompt cell is empty while other cells are not is an issue too.
    """
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    rows = _csv_rows(stream, source)
    first = next(rows, None)
    if first is None:
        yield InputIssue(source, "csv file has no header row")
        return
    if isinstance(first, InputIssue):
        yield InputIssue(source, f"malformed csv header: {first.message}", 1)
        return
    header = first[1]
    problem = pick_value(header, header, column, "column")
    if isinstance(problem, str):
        columns = printable(", ".join(header))
        yield InputIssue(source, f"{problem} (columns: {columns}); use --column")
        return
    for item in rows:
        if isinstance(item, InputIssue):
            yield item
            continue
        line, row = item
        if not row or all(not cell.strip() for cell in row):
            continue
        picked = pick_value(header, list(row), column, "column")
        if picked is None or isinstance(picked, str):
            name = column or "/".join(c for c in header if c.strip().lower() in DEFAULT_COLUMNS)
            yield InputIssue(source, f"row has an empty '{printable(name)}' cell", line)
            continue
        name, text = picked
        if text is None:
            yield InputIssue(source, f"row has no '{name}' value ({len(row)} fields)", line)
            continue
        assert isinstance(text, str)
        problem = _undecodable(text)
        if problem:
            yield InputIssue(source, problem, line)
        else:
            yield make_record(text.strip(), source, line)


def read_jsonl(stream: io.TextIOWrapper, source: str, field: str | None) -> Iterator[ReadItem]:
    """One JSON object per line; the prompt is in ``field`` (default prompt/text/caption)."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        problem = _undecodable(line)
        if problem:
            yield InputIssue(source, problem, number)
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            msg = exc.msg.removesuffix(" at")  # "Invalid control character at"
            yield InputIssue(source, f"not valid JSON ({msg} at column {exc.colno})", number)
            continue
        except (ValueError, RecursionError) as exc:  # too many digits, nested too deep
            yield InputIssue(source, f"not valid JSON ({type(exc).__name__}: {exc})", number)
            continue
        if not isinstance(obj, dict):
            yield InputIssue(source, "expected a JSON object", number)
            continue
        picked = pick_value(list(obj), list(obj.values()), field, "field")
        if isinstance(picked, str):
            yield InputIssue(source, f"{picked} in this object; use --field", number)
            continue
        if picked is None:
            name = field or "/".join(k for k in obj if k.strip().lower() in DEFAULT_COLUMNS)
            yield InputIssue(source, f"field '{printable(name)}' is empty", number)
            continue
        key, value = picked
        if not isinstance(value, str):
            yield InputIssue(source, f"field '{printable(key)}' is not a string", number)
        elif problem := lone_surrogate(value):
            yield InputIssue(source, f"field '{printable(key)}' {problem}", number)
        else:
            yield make_record(value.strip(), source, number)
