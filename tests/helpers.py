"""Shared test helpers: run the CLI as a real subprocess, write files, validate SARIF and JUnit,
parse GitHub workflow commands.

The in-process CLI fixture ``vgate_main`` is in ``conftest.py``; tiny video/ONNX fixtures are in
``videokit.py``, tiny diffusers pipelines and latent collections in ``lvdkit.py``.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import xmlschema

REPO = Path(__file__).resolve().parent.parent
SARIF_SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"
JUNIT_SCHEMA = Path(__file__).parent / "data" / "junit.xsd"


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


@functools.cache
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(JUNIT_SCHEMA)


def validate_junit(xml: str) -> ET.Element:
    """Validate against the JUnit XSD and check each suite's counts against its test cases."""
    junit_schema().validate(xml)
    root = ET.fromstring(xml)
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases)
        for kind, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
            assert int(suite.get(attr)) == sum(case.find(kind) is not None for case in cases)
    return root


_DATA_ESCAPES = {"%0D": "\r", "%0A": "\n", "%25": "%"}
_PROPERTY_ESCAPES = {"%0D": "\r", "%0A": "\n", "%3A": ":", "%2C": ",", "%25": "%"}


def _unescape(value: str, escapes: dict[str, str]) -> str:
    return re.sub("|".join(escapes), lambda m: escapes[m.group()], value)


def parse_workflow_command(line: str) -> tuple[str, dict[str, str], str]:
    """(command, properties, message) of ``::command k=v,k=v::message`` as the Actions runner
    reads it: the command ends at the first space or ``::``, properties are split at ``,`` and
    at the first ``=``, and the message is everything after the first ``::`` that follows."""
    assert line.startswith("::"), line
    end = line.index("::", 2)
    head, message = line[2:end], line[end + 2 :]
    command, _, props = head.partition(" ")
    properties = {}
    for pair in filter(None, props.split(",")):
        key, sep, value = pair.partition("=")
        assert sep, f"property without '=': {pair!r}"
        properties[key] = _unescape(value, _PROPERTY_ESCAPES)
    assert "\r" not in line and "\n" not in line
    return command, properties, _unescape(message, _DATA_ESCAPES)


def annotations(out: str) -> list[tuple[str, dict[str, str], str]]:
    assert out.endswith("\n")
    return [parse_workflow_command(line) for line in out[:-1].split("\n")]
