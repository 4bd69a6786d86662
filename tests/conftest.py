"""Shared helpers for the scan-core tests: run the CLI in-process or as a real subprocess."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from skip_guard import (  # noqa: F401 (hooks: in CI a skipped test fails the run)
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_terminal_summary,
)

REPO = Path(__file__).resolve().parent.parent


def default_model_files() -> list[Path]:
    """Every file the shipped default prompt model needs: its config and, for a cascade, the
    model files of both stages (for a single model, its own)."""
    import json

    from vgate.detectors.prompt_model import MODEL_FILES, resolve_model_dir
    from vgate.resources import DEFAULT_MODEL

    directory = resolve_model_dir(DEFAULT_MODEL)
    config_path = directory / "config.json"
    if not config_path.is_file():
        return [config_path]
    config = json.loads(config_path.read_text(encoding="utf-8"))
    stages = [config["first"], config["second"]] if config.get("kind") == "cascade" else []
    dirs = [resolve_model_dir(ref) for ref in stages] or [directory]
    return [config_path] + [
        d / name for d in dirs for name in MODEL_FILES if d / name != config_path
    ]


@dataclass
class CliResult:
    """Exit code and captured output of one ``vgate`` run."""

    code: int
    stdout: str
    stderr: str


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    return exc.code if isinstance(exc.code, int) else 1


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
            code = _exit_code(exc)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


def vgate_exe() -> list[str]:
    """The installed console script (falls back to the module when it is not on PATH)."""
    exe = shutil.which("vgate")
    return [exe] if exe else [sys.executable, "-c", "from vgate.cli import main; main()"]


def run_vgate(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> CliResult:
    """Run the real ``vgate`` console script in a subprocess."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    proc = subprocess.run(
        [*vgate_exe(), *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )
    return CliResult(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )


def write(path: Path, content: str | bytes) -> Path:
    """Write ``content`` (text as UTF-8) to ``path``, creating parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_bytes(content.encode("utf-8"))
    else:
        path.write_bytes(content)
    return path
