"""Fixtures shared by every test; plain helpers are in ``tests/helpers.py``."""

from __future__ import annotations

import io
import sys

import pytest

from tests.helpers import CliResult, exit_code
from tests.skip_guard import (  # noqa: F401 (hooks: in CI a skipped test fails the run)
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_terminal_summary,
)


@pytest.fixture
def vgate_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run ``vgate.cli.main()`` in-process (the console script's entry point, error handling
    included) with ``args`` and optional stdin bytes; returns a :class:`CliResult`."""
    from vgate.cli import main

    def run(*args: str, stdin: bytes = b"") -> CliResult:
        monkeypatch.setenv("COLUMNS", "300")  # table rows on one line each
        monkeypatch.setattr(sys, "argv", ["vgate", *args])
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exit_code(exc)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run
