"""A pytest plugin: in CI (``CI=true``) a skipped test fails the run.

Skips come from ``importorskip`` of ``[dev]`` dependencies or from missing tools; in CI every one
of them is installed, so a skip there means a broken install that would otherwise pass quietly.
Loaded by ``tests/conftest.py``; outside CI skips are reported as usual.
"""

from __future__ import annotations

import os

import pytest

_SKIPPED: list[str] = []


def in_ci() -> bool:
    """Is ``CI`` set to a true value (as GitHub Actions and most CI services set it)?"""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _SKIPPED.append(f"{report.nodeid}: {_reason(report)}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if in_ci() and _SKIPPED and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if in_ci() and _SKIPPED:
        terminalreporter.section("skipped in CI (fails the run)", red=True)
        for line in _SKIPPED:
            terminalreporter.write_line(line)
