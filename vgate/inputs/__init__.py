"""Turn the paths on the command line into a stream of prompt records, video files to scan
and input issues."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import BinaryIO

from vgate.core.findings import InputIssue
from vgate.inputs.prompts import (
    ReadItem,
    lone_surrogate,
    make_record,
    open_text,
    printable,
    read_csv,
    read_jsonl,
    read_txt,
)
from vgate.inputs.video import VIDEO_EXTENSIONS, VideoItem, is_video

FORMATS = ("auto", "txt", "csv", "jsonl")
PROMPT_EXTENSIONS = {".txt": "txt", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
STDIN = "-"
InputItem = ReadItem | VideoItem
"""What ``iter_inputs`` yields: a prompt record, an input issue or a video file to scan."""
InputFile = tuple[str, Path | None] | InputIssue
"""What ``expand_paths`` yields: (display name, path; None for stdin), or an issue."""


def format_for(path: Path, requested: str) -> str:
    """The reader for a file: the requested one, else by extension (unknown -> txt)."""
    if requested != "auto":
        return requested
    return PROMPT_EXTENSIONS.get(path.suffix.lower(), "txt")


def files_under(
    directory: Path, extensions: Iterable[str], skip_prefixes: tuple[str, ...] = (".",)
) -> list[Path]:
    """Files below ``directory`` with one of ``extensions``, sorted; entries whose name (or a
    parent's name below ``directory``) starts with one of ``skip_prefixes`` are skipped."""
    suffixes = set(extensions)
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file()
        and p.suffix.lower() in suffixes
        and not any(part.startswith(skip_prefixes) for part in p.relative_to(directory).parts)
    )


def expand_paths(paths: Sequence[str]) -> Iterator[InputFile]:
    """Yield ``(display name, path)`` per file to read (``path`` None for stdin).

    Directories are walked recursively in sorted order for prompt and video files; hidden
    entries are skipped.
    Display names spell out bytes of a file name that are not UTF-8 (see ``printable``).
    """
    for arg in paths:
        if arg == STDIN:
            yield STDIN, None
            continue
        path = Path(arg)
        if path.is_dir():
            found = files_under(path, (*PROMPT_EXTENSIONS, *VIDEO_EXTENSIONS))
            if not found:
                exts = ", ".join(PROMPT_EXTENSIONS)
                videos = ", ".join(VIDEO_EXTENSIONS)
                yield InputIssue(
                    printable(arg), f"directory has no prompt files ({exts}) or videos ({videos})"
                )
            for p in found:
                yield printable(str(p)), p
        elif path.exists():
            yield printable(arg), path
        else:
            yield InputIssue(printable(arg), "no such file or directory")


def read_stream(
    raw: BinaryIO, source: str, fmt: str, column: str | None, field: str | None
) -> Iterator[ReadItem]:
    """Read one byte stream with the reader for ``fmt``."""
    stream = open_text(raw, source)
    if isinstance(stream, InputIssue):
        yield stream
        return
    if fmt == "csv":
        yield from read_csv(stream, source, column)
    elif fmt == "jsonl":
        yield from read_jsonl(stream, source, field)
    else:
        yield from read_txt(stream, source)


def iter_inputs(
    paths: Sequence[str],
    *,
    input_format: str = "auto",
    column: str | None = None,
    field: str | None = None,
) -> Iterator[InputItem]:
    """All records from all paths, in order; unreadable files and lines become issues.

    Files with a video extension (``VIDEO_EXTENSIONS``) are yielded as ``VideoItem`` whatever
    ``input_format`` says: the scan decodes them (``vgate.core.video``).
    """
    return read_inputs(expand_paths(paths), input_format=input_format, column=column, field=field)


def read_inputs(
    files: Iterable[InputFile],
    *,
    input_format: str = "auto",
    column: str | None = None,
    field: str | None = None,
) -> Iterator[InputItem]:
    """``iter_inputs`` on paths already expanded (a scan walks its paths once)."""
    for item in files:
        if isinstance(item, InputIssue):
            yield item
            continue
        name, path = item
        if path is None:
            fmt = "txt" if input_format == "auto" else input_format
            yield from read_stream(sys.stdin.buffer, "<stdin>", fmt, column, field)
            continue
        if is_video(path):
            yield VideoItem(name, path)
            continue
        try:
            raw = path.open("rb")
        except OSError as exc:
            yield InputIssue(name, f"cannot open ({exc.strerror or exc})")
            continue
        with raw:
            yield from read_stream(raw, name, format_for(path, input_format), column, field)


def text_records(texts: Sequence[str]) -> Iterator[ReadItem]:
    """Records for prompts given with ``--text``."""
    for i, text in enumerate(texts, start=1):
        line = i if len(texts) > 1 else 0
        problem = lone_surrogate(text)
        if problem:
            yield InputIssue("<text>", f"not valid UTF-8: {problem}", line or None)
        else:
            yield make_record(text, "<text>", line)


def has_video(files: Iterable[InputFile]) -> bool:
    """Is any of the expanded files a video?"""
    return any(
        not isinstance(item, InputIssue) and item[1] is not None and is_video(item[1])
        for item in files
    )


def count_lines(files: Iterable[InputFile]) -> int | None:
    """Physical lines in the expanded files: the progress bar's total (None with stdin)."""
    total = 0
    for item in files:
        if isinstance(item, InputIssue):
            continue
        if item[1] is None:
            return None
        if is_video(item[1]):
            continue
        try:
            with item[1].open("rb") as raw:
                total += sum(chunk.count(b"\n") for chunk in iter(partial(raw.read, 1 << 20), b""))
        except OSError:
            pass
    return total
