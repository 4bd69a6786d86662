"""User-facing errors: a one-line message and exit code 2, never a traceback."""

from __future__ import annotations

from vgate import DISTRIBUTION

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
            f"install it with: pip install '{DISTRIBUTION}[{extra}]'"
        )
