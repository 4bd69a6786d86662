"""Opening files named by the user: regular files only, never blocking, never read unbounded.

A FIFO given as a prompt file, policy or baseline would block ``open`` or ``read`` forever, and
``/dev/zero`` would fill memory. ``open_regular`` opens without blocking, checks the opened file
is a regular file and only then hands it over; ``read_capped`` also refuses files over a size cap.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

MAX_POLICY_BYTES = 1 << 20
"""Policies and other YAML settings files (1 MiB; the shipped ones are under 10 KiB)."""
MAX_BASELINE_BYTES = 512 << 20
"""Baseline reports (512 MiB; a JSON report of 100,000 flagged prompts is about 150 MB)."""

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class UnreadableFile(Exception):
    """Why a file cannot be read, as a short phrase (``is a named pipe (FIFO), ...``)."""


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _check_regular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise UnreadableFile(f"is {_kind(mode)}, expected a regular file")


def _reason(exc: OSError) -> UnreadableFile:
    if isinstance(exc, FileNotFoundError):
        return UnreadableFile("file not found")
    if isinstance(exc, PermissionError):
        return UnreadableFile("permission denied")
    if isinstance(exc, IsADirectoryError):
        return UnreadableFile("is a directory, expected a regular file")
    return UnreadableFile(f"cannot open ({exc.strerror or exc})")


def open_regular(path: str | Path) -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular file (symlinks followed).

    Raises ``UnreadableFile``. The file is checked before opening (so devices are never opened)
    and the opened descriptor again (so a FIFO swapped in between cannot block the read).
    """
    try:
        _check_regular(os.stat(path).st_mode)
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags)
    except OSError as exc:
        raise _reason(exc) from None
    except ValueError as exc:  # an embedded NUL in the name
        raise UnreadableFile(f"cannot open ({exc})") from None
    try:
        _check_regular(os.fstat(fd).st_mode)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_capped(path: str | Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``; ``UnreadableFile`` when it has more than
    ``limit`` bytes (only ``limit + 1`` bytes are ever read)."""
    with open_regular(path) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise UnreadableFile(f"cannot read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise UnreadableFile(f"larger than {limit:,} bytes")
    return data


def is_regular(path: str | Path) -> bool:
    """True for a regular file (or a symlink to one); never opens the file."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False
