"""Where reports go: stdout, or a file written atomically and never over an input.

Every command that writes a report (``scan``, ``eval``, ``probe eval``, ``generate``) goes
through here. A file report is written to a temporary file in the same folder (``.NAME.*.tmp``)
and renamed over ``NAME`` only when the whole report was written and synced, so an
interrupted, crashed or failed run leaves the previous report untouched and no temporary file
behind, and two runs writing the same path never interleave (the last rename wins). Targets
that are not regular files (``/dev/stdout``, ``/dev/null``, a FIFO) are written directly.
Write errors (a full disk) become one-line errors naming the file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TextIO, cast

from vgate.errors import VgateError
from vgate.reports import FORMATS, Reporter, make_reporter

if TYPE_CHECKING:
    from vgate.core.findings import ScanMeta, ScanSummary, Verdict

STDOUT = "<stdout>"
"""Display name of the standard output as a report target."""


def _describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


def write_error(target: str, exc: OSError) -> VgateError:
    """The one-line error for a report that could not be written."""
    return VgateError(f"{target}: cannot write report ({_describe(exc)})")


# --- a closed stdout ----------------------------------------------------------------------------


class StdoutClosed(BaseException):
    """The reader of stdout (or stderr) went away (``vgate scan ... | head -1``).

    A ``BaseException``, so that nothing on the way (typer's own ``EPIPE`` handling included)
    turns it into an ordinary exit code; ``vgate.cli.main`` ends the process as Unix tools do.
    """


class _PipeGuard:
    """A text stream that raises :class:`StdoutClosed` where the stream raises
    ``BrokenPipeError``; everything else is the wrapped stream's."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise StdoutClosed from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise StdoutClosed from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def guard_std_streams() -> Iterator[None]:
    """While the block runs, a closed stdout or stderr raises :class:`StdoutClosed`."""
    saved = sys.stdout, sys.stderr
    sys.stdout = _PipeGuard(sys.stdout)
    sys.stderr = _PipeGuard(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


# --- output equal to an input -------------------------------------------------------------------


def _identity(path: Path | str) -> tuple[int, int] | None:
    """(device, inode) of an existing file (symlinks followed), else None."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def _stdin_identity() -> tuple[int, int] | None:
    """(device, inode) of stdin when it is a regular file (``< prompts.txt``), else None."""
    try:
        info = os.fstat(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISREG(info.st_mode) else None


def refuse_inputs(outputs: Sequence[Path | str], inputs: Iterable[Path | str | None]) -> None:
    """Raise when an output is the same file (by inode) as an input or as another output.

    ``inputs`` are files (``None`` or ``-`` for stdin); directories are searched recursively.
    Call before anything is opened for writing: writing a report over its own input would
    destroy the input.
    """
    _check_distinct(outputs)
    wanted: dict[tuple[int, int], Path | str] = {}
    for output in outputs:
        key = _identity(output)
        if key is None:
            continue
        if key in wanted:
            raise VgateError(f"{output}: the same file is given for two outputs")
        wanted[key] = output
    if wanted:
        _refuse_identities(wanted, inputs)


def _refuse_identities(
    wanted: dict[tuple[int, int], Path | str], inputs: Iterable[Path | str | None]
) -> None:
    """Raise when an input (a folder: any file below it) is one of the ``wanted`` files."""
    for item in inputs:
        if item is None or str(item) == "-":
            key, name = _stdin_identity(), "stdin"
        elif Path(item).is_dir():
            _refuse_identities(wanted, (p for p in Path(item).rglob("*") if p.is_file()))
            continue
        else:
            key, name = _identity(item), str(item)
        if key in wanted:
            raise VgateError(
                f"{wanted[key]}: the report would overwrite an input ({name}); "
                "write it somewhere else"
            )


def _check_distinct(outputs: Sequence[Path | str]) -> None:
    """Raise when two report paths name the same file before they exist."""
    seen: dict[str, Path | str] = {}
    for output in outputs:
        key = os.path.realpath(output)
        if key in seen:
            raise VgateError(f"{output}: the same file is given for two outputs")
        seen[key] = output


# --- atomic files -------------------------------------------------------------------------------


class AtomicFile:
    """A report file being written: a temporary file beside the target until ``commit``.

    ``discard`` removes the temporary file (the target is never touched). Targets that exist and
    are not regular files (devices, FIFOs) are opened and written directly.
    """

    def __init__(self, path: Path | str, *, binary: bool = False) -> None:
        self.path = Path(path)
        try:
            info: os.stat_result | None = os.stat(self.path)
        except FileNotFoundError:
            info = None
        except OSError as exc:
            raise write_error(str(self.path), exc) from None
        if info is not None and stat.S_ISDIR(info.st_mode):
            raise VgateError(f"{self.path}: cannot write report (it is a directory)")
        self.direct = info is not None and not stat.S_ISREG(info.st_mode)
        # A symlink stays: the file it points to is replaced.
        self.target = self.path if self.direct else Path(os.path.realpath(self.path))
        self.temp: Path | None = None
        try:
            if self.direct and info is not None and stat.S_ISFIFO(info.st_mode):
                # a FIFO nobody reads fails at once (ENXIO) instead of hanging the run
                fd = os.open(self.target, os.O_WRONLY | os.O_NONBLOCK)
                os.set_blocking(fd, True)
            elif self.direct:
                fd = os.open(self.target, os.O_WRONLY)
            else:
                fd, self.temp = self._create_temp(self.target, info)
        except OSError as exc:
            raise write_error(str(self.path), exc) from None
        mode = "wb" if binary else "w"
        kwargs: dict[str, Any] = {} if binary else {"encoding": "utf-8", "newline": "\n"}
        self.stream: IO[Any] = os.fdopen(fd, mode, **kwargs)

    @staticmethod
    def _create_temp(target: Path, existing: os.stat_result | None) -> tuple[int, Path]:
        """A new hidden file in the target's folder (mode: the target's, else 0666 - umask)."""
        name = target.name[:100]
        while True:
            temp = target.with_name(f".{name}.{secrets.token_hex(4)}.tmp")
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue
            if existing is not None:
                with contextlib.suppress(OSError, AttributeError):  # no os.fchmod: Windows
                    os.fchmod(fd, stat.S_IMODE(existing.st_mode))
            return fd, temp

    def commit(self) -> None:
        """Flush, sync and rename the temporary file over the target; raises ``VgateError``."""
        try:
            self.stream.flush()
            if self.temp is not None:
                os.fsync(self.stream.fileno())
            self.stream.close()
            if self.temp is not None:
                os.replace(self.temp, self.target)
                self.temp = None
        except OSError as exc:
            self.discard()
            raise write_error(str(self.path), exc) from None

    def discard(self) -> None:
        """Close and remove the temporary file; the target keeps its previous content."""
        with contextlib.suppress(OSError, ValueError):
            self.stream.close()
        if self.temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.temp)
            self.temp = None


@contextlib.contextmanager
def atomic_write(path: Path | str, *, binary: bool = False) -> Iterator[IO[Any]]:
    """A stream whose content replaces ``path`` only when the block ends without an error."""
    file = AtomicFile(path, binary=binary)
    try:
        yield file.stream
    except OSError as exc:
        file.discard()
        raise write_error(str(path), exc) from None
    except BaseException:
        file.discard()
        raise
    file.commit()


def write_text_report(path: Path | str, text: str) -> None:
    """Write a whole report (e.g. the metrics JSON of ``vgate eval``) atomically."""
    with atomic_write(path) as stream:
        stream.write(text)


# --- several reports in one run -----------------------------------------------------------------


@dataclass
class ReportTarget:
    """One report to write: its format and its file (None: stdout)."""

    fmt: str
    path: Path | None = None

    @property
    def name(self) -> str:
        return STDOUT if self.path is None else str(self.path)


def parse_report_option(value: str) -> ReportTarget:
    """``FORMAT=PATH`` of ``--report`` as a target; raises ``VgateError`` on anything else."""
    fmt, sep, path = value.partition("=")
    fmt = fmt.strip().lower()
    if not sep or not path:
        raise VgateError(f"--report takes FORMAT=PATH (e.g. sarif=vgate.sarif), got '{value}'")
    if fmt not in FORMATS:
        raise VgateError(f"--report format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    if path == "-":
        raise VgateError("--report writes a file; use --format for the report on stdout")
    return ReportTarget(fmt, Path(path))


class _Sink:
    """One report of a :class:`ReportSet`: its reporter and, for a file, the atomic file."""

    def __init__(self, target: ReportTarget, show_all: bool) -> None:
        self.target = target
        self.file = AtomicFile(target.path) if target.path is not None else None
        stream = cast(TextIO, self.file.stream) if self.file else sys.stdout
        self.stream = stream
        self.reporter = make_reporter(target.fmt, stream, show_all=show_all)
        self.error: VgateError | None = None


class ReportSet:
    """Feeds every verdict to several reports (a :class:`vgate.reports.Reporter` itself).

    A report that cannot be written (full disk) is dropped with its error and the others go
    on; ``close`` then commits the complete ones and raises the errors as one ``VgateError``.
    A closed stdout (``| head``) raises ``BrokenPipeError`` (``StdoutClosed`` under the CLI)
    and ends the whole run.
    """

    def __init__(self, targets: Sequence[ReportTarget], *, show_all: bool = False) -> None:
        self.sinks: list[_Sink] = []
        try:
            for target in targets:
                self.sinks.append(_Sink(target, show_all))
        except BaseException:
            self.discard()
            raise

    def _each(self, call: Callable[[Reporter], None]) -> None:
        for sink in self.sinks:
            if sink.error is not None:
                continue
            try:
                call(sink.reporter)
            except BrokenPipeError as exc:
                if sink.file is None:
                    raise
                sink.error = write_error(sink.target.name, exc)
                sink.file.discard()
            except OSError as exc:
                sink.error = write_error(sink.target.name, exc)
                if sink.file is not None:
                    sink.file.discard()

    def start(self, meta: ScanMeta) -> None:
        self._each(lambda reporter: reporter.start(meta))

    def add(self, verdict: Verdict) -> None:
        self._each(lambda reporter: reporter.add(verdict))

    def finish(self, summary: ScanSummary) -> None:
        self._each(lambda reporter: reporter.finish(summary))
        for sink in self.sinks:
            if sink.file is None and sink.error is None:
                try:
                    sink.stream.flush()
                except BrokenPipeError:
                    raise
                except OSError as exc:
                    sink.error = write_error(sink.target.name, exc)

    def close(self) -> None:
        """Commit every complete file report; raise the failures as one one-line error."""
        errors = []
        for sink in self.sinks:
            if sink.error is not None:
                errors.append(sink.error)
            elif sink.file is not None:
                try:
                    sink.file.commit()
                except VgateError as exc:
                    errors.append(exc)
        if errors:
            raise VgateError("; ".join(str(error) for error in errors))

    def discard(self) -> None:
        """Drop every temporary file: the previous reports stay as they were."""
        for sink in self.sinks:
            if sink.file is not None:
                sink.file.discard()


@contextlib.contextmanager
def open_reports(targets: Sequence[ReportTarget], *, show_all: bool = False) -> Iterator[ReportSet]:
    """The reports of one run; committed when the block ends normally, else discarded."""
    reports = ReportSet(targets, show_all=show_all)
    try:
        yield reports
    except BaseException:
        reports.discard()
        raise
    reports.close()
