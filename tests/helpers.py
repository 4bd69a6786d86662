"""Shared test helpers: run the CLI as a real subprocess, write files, validate SARIF.

The in-process CLI fixture ``vgate_main`` is in ``conftest.py``; tiny video/ONNX fixtures are in
``videokit.py``, tiny diffusers pipelines and latent collections in ``lvdkit.py``.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import jsonschema

REPO = Path(__file__).resolve().parent.parent
SARIF_SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"


def default_model_files() -> list[Path]:
    """Every file the shipped default prompt model needs: its config and, for a cascade, the
    model files of both stages (for a single model, its own)."""
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


def exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    return exc.code if isinstance(exc.code, int) else 1


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


@functools.cache
def _sarif_validator() -> jsonschema.Draft4Validator:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())


def validate_sarif(log: dict) -> None:
    """Validate against the official SARIF 2.1.0 schema (shipped in tests/data)."""
    _sarif_validator().validate(log)
