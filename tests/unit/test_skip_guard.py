"""In CI (``CI=true``) a skipped test fails the run (tests/skip_guard.py, loaded by conftest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _pytest(tmp_path: Path, body: str, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(body, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.skip_guard", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


SKIPPING = (
    "import pytest\n\n"
    "def test_ok():\n    pass\n\n"
    "def test_needs_a_dev_dependency():\n    pytest.importorskip('no_such_module_vgate')\n"
)


@pytest.mark.parametrize("ci", ["true", "1"])
def test_a_skip_fails_the_run_in_ci(tmp_path: Path, ci: str) -> None:
    proc = _pytest(tmp_path, SKIPPING, ci)
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout
    assert "skipped in CI" in proc.stdout
    assert "test_needs_a_dev_dependency" in proc.stdout
    assert "no_such_module_vgate" in proc.stdout


def test_a_skip_is_only_reported_outside_ci(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, SKIPPING, None)
    assert proc.returncode == pytest.ExitCode.OK, proc.stdout
    assert "1 skipped" in proc.stdout


def test_no_skip_passes_in_ci_and_a_failure_stays_a_failure(tmp_path: Path) -> None:
    assert _pytest(tmp_path, "def test_ok():\n    pass\n", "true").returncode == 0
    failing = "def test_bad():\n    assert False\n"
    assert _pytest(tmp_path, failing, "true").returncode == pytest.ExitCode.TESTS_FAILED
