"""Turn the paths on the command line into a stream of prompt records, video files to scan
and input issues."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import BinaryIO

from vgate.core.findings import InputIssue
from vgate.files import UnreadableFile, open_regular
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


def walk_files(
    directory: Path, extensions: Iterable[str], skip_prefixes: tuple[str, ...] = (".",)
) -> Iterator[Path | InputIssue]:
    """Files below ``directory`` with one of ``extensions``, depth first in sorted order, and an
    issue for every entry that cannot be read.

    Entries whose name starts with one of ``skip_prefixes`` are skipped. Symbolic links are
    followed; a directory reached again (a link loop, or two links to one folder) is read only
    the first time. A sub-folder that cannot be listed, a broken link and a matching entry that
    is not a regular file are issues: nothing is skipped without a word. The walk keeps its own
    stack, so no nesting depth can exhaust Python's recursion limit.
    """
    suffixes = {e.lower() for e in extensions}
    seen: set[tuple[int, int]] = set()

    def listing(folder: Path) -> Iterator[os.DirEntry[str]] | InputIssue | None:
        """The folder's entries in name order; None when it was listed already."""
        try:
            info = folder.stat()
            if (info.st_dev, info.st_ino) in seen:
                return None
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(folder) as entries:
                return iter(sorted(entries, key=lambda e: e.name))
        except OSError as exc:
            return InputIssue(printable(str(folder)), f"cannot read directory ({_why(exc)})")

    root = listing(directory)
    if isinstance(root, InputIssue):
        yield root
        return
    stack = [root] if root is not None else []
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        if entry.name.startswith(skip_prefixes):
            continue
        path = Path(entry.path)
        try:
            is_dir, is_file = entry.is_dir(), entry.is_file()
            broken = entry.is_symlink() and not path.exists()
        except OSError as exc:
            yield InputIssue(printable(str(path)), f"cannot read ({_why(exc)})")
            continue
        if is_dir:
            below = listing(path)
            if isinstance(below, InputIssue):
                yield below
            elif below is not None:
                stack.append(below)
        elif path.suffix.lower() not in suffixes:
            continue
        elif is_file:
            yield path
        elif broken:
            yield InputIssue(printable(str(path)), "broken symbolic link; not scanned")
        else:
            yield InputIssue(printable(str(path)), "not a regular file; not scanned")


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def expand_paths(paths: Sequence[str]) -> Iterator[InputFile]:
    """Yield ``(display name, path)`` per file to read (``path`` None for stdin).

    Directories are walked recursively in sorted order for prompt and video files (hidden
    entries are skipped, symbolic links followed; see ``walk_files``).
    Display names spell out bytes of a file name that are not UTF-8 (see ``printable``).
    """
    for arg in paths:
        if arg == STDIN:
            yield STDIN, None
            continue
        path = Path(arg)
        try:
            is_dir = stat.S_ISDIR(path.stat().st_mode)
        except FileNotFoundError:
            is_dir = False
        except OSError as exc:  # a parent folder that cannot be searched, a loop of links
            yield InputIssue(printable(arg), f"cannot read ({_why(exc)})")
            continue
        if is_dir:
            found = 0
            for item in walk_files(path, (*PROMPT_EXTENSIONS, *VIDEO_EXTENSIONS)):
                if isinstance(item, InputIssue):
                    yield item
                    continue
                found += 1
                yield printable(str(item)), item
            if not found:
                exts = ", ".join(PROMPT_EXTENSIONS)
                videos = ", ".join(VIDEO_EXTENSIONS)
                yield InputIssue(
                    printable(arg), f"directory has no prompt files ({exts}) or videos ({videos})"
                )
        elif path.exists():
            yield printable(arg), path
        elif path.is_symlink():
            yield InputIssue(printable(arg), "broken symbolic link")
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
            if sys.stdin is None:
                yield InputIssue("<stdin>", "standard input is closed")
                continue
            fmt = "txt" if input_format == "auto" else input_format
            yield from read_stream(sys.stdin.buffer, "<stdin>", fmt, column, field)
            continue
        try:
            raw = open_regular(path)  # a FIFO or device is refused, never read
        except UnreadableFile as exc:
            yield InputIssue(name, str(exc), path=str(path))
            continue
        if is_video(path):
            raw.close()
            yield VideoItem(name, path)
            continue
        with raw:
            items = read_stream(raw, name, format_for(path, input_format), column, field)
            yield from items if name == str(path) else _with_path(items, str(path))


def _with_path(items: Iterable[ReadItem], path: str) -> Iterator[ReadItem]:
    """``items`` with the real file name set (their ``source`` spells out undecodable bytes)."""
    for item in items:
        item.path = path
        yield item


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
            with open_regular(item[1]) as raw:
                total += sum(chunk.count(b"\n") for chunk in iter(partial(raw.read, 1 << 20), b""))
        except (OSError, UnreadableFile):
            pass
    return total
