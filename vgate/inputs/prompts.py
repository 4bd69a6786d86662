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
from collections.abc import Iterator
from typing import BinaryIO, cast

from vgate.core.findings import InputIssue, Record

MAX_PROMPT_CHARS = 20_000
"""Longer prompts are cut for the detectors (the model reads far less); the location is kept."""
DEFAULT_COLUMNS = ("prompt", "text", "caption")
SUPPRESS_MARKER = re.compile(r"\s*#\s*vgate:\s*allow\s*$", re.IGNORECASE)
_SNIFF_BYTES = 8192
_UNDECODABLE = re.compile("[\udc80-\udcff]")
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""A lone surrogate: not encodable as UTF-8 (undecodable bytes, JSON ``\\udXXX`` escapes)."""

ReadItem = Record | InputIssue


def make_record(text: str, source: str, line: int, *, suppressed: bool = False) -> Record:
    """A record with over-long text cut to ``MAX_PROMPT_CHARS``."""
    truncated = len(text) > MAX_PROMPT_CHARS
    if truncated:
        text = text[:MAX_PROMPT_CHARS]
    return Record(text=text, source=source, line=line, truncated=truncated, suppressed=suppressed)


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
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")


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


def read_csv(stream: io.TextIOWrapper, source: str, column: str | None) -> Iterator[ReadItem]:
    """Rows of a csv file with a header; ``line`` is the row's first physical line."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        yield InputIssue(source, "csv file has no header row")
        return
    except csv.Error as exc:
        yield InputIssue(source, f"malformed csv header: {exc}", 1)
        return
    name = pick_column(header, column)
    if name is None:
        wanted = f"no column '{column}'" if column else "no prompt, text or caption column"
        columns = printable(", ".join(header))
        yield InputIssue(source, f"{printable(wanted)} (columns: {columns}); use --column")
        return
    index = header.index(name)
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield InputIssue(source, f"malformed csv row: {exc}", start)
            start = reader.line_num + 1
            continue
        line, start = start, reader.line_num + 1
        if not row or all(not cell.strip() for cell in row):
            continue
        if index >= len(row):
            yield InputIssue(source, f"row has no '{name}' value ({len(row)} fields)", line)
            continue
        text = row[index]
        problem = _undecodable(text)
        if problem:
            yield InputIssue(source, problem, line)
        elif text.strip():
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
        key = pick_column(list(obj), field)
        if key is None:
            wanted = f"no field '{field}'" if field else "no prompt, text or caption field"
            yield InputIssue(source, f"{printable(wanted)} in this object; use --field", number)
            continue
        value = obj[key]
        if not isinstance(value, str):
            yield InputIssue(source, f"field '{printable(key)}' is not a string", number)
        elif problem := lone_surrogate(value):
            yield InputIssue(source, f"field '{printable(key)}' {problem}", number)
        elif value.strip():
            yield make_record(value.strip(), source, number)
