"""User-facing errors: a one-line message and exit code 2, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2


class VgateError(Exception):
    """An error the user can fix; the CLI prints ``vgate: error: <message>`` and exits 2."""

    exit_code = EXIT_ERROR


class InputError(VgateError):
    """A prompt or video input cannot be read."""


class PolicyError(VgateError):
    """A policy file is missing, malformed or invalid."""


class ModelError(VgateError):
    """A model file is missing, corrupt or incompatible."""


class MissingExtraError(VgateError):
    """An optional dependency is not installed."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"this command needs the '{module}' package; "
            f"install it with: pip install 'vgate[{extra}]'"
        )


def first_line(exc: BaseException, *, with_type: bool = False, limit: int | None = None) -> str:
    """The first line of an exception's message for a one-line error (``Type: line`` with
    ``with_type``, cut to ``limit`` characters); the type's name when the message is empty."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    line = lines[0][:limit] if limit else lines[0]
    return f"{type(exc).__name__}: {line}" if with_type else line


@dataclass(frozen=True)
class ReadFailures:
    """The one-line error for each way reading a file can fail; ``unreadable`` may hold
    ``{reason}`` (the operating system's words)."""

    error: type[VgateError]
    missing: str
    directory: str
    not_utf8: str
    unreadable: str

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Turn the read errors raised inside the block into ``error``."""
        try:
            yield
        except FileNotFoundError:
            raise self.error(self.missing) from None
        except IsADirectoryError:
            raise self.error(self.directory) from None
        except UnicodeDecodeError:
            raise self.error(self.not_utf8) from None
        except OSError as exc:
            raise self.error(self.unreadable.format(reason=exc.strerror or exc)) from None
