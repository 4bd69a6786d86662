"""The composite GitHub Action: action.yml wiring, and scripts/action-scan.sh run locally."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, validate_sarif

ACTION = REPO / "action.yml"
SCRIPT = REPO / "scripts" / "action-scan.sh"
COUNT_KEYS = ("scanned", "blocked", "warned", "suppressed", "errors")

requires_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@pytest.fixture(scope="module")
def action() -> dict:
    return yaml.safe_load(ACTION.read_text(encoding="utf-8"))


# --- action.yml --------------------------------------------------------------------------------


def test_inputs_and_defaults(action: dict) -> None:
    inputs = action["inputs"]
    defaults = {name: spec.get("default") for name, spec in inputs.items()}
    assert defaults == {
        "paths": ".",
        "policy": "default",
        "fail-on": "block",
        "format": "sarif",
        "sarif-file": "vgate.sarif",
        "baseline": "",
        "extra-args": "",
        "python-version": "3.11",
    }
    assert all(spec.get("description") for spec in inputs.values())
    assert not any(spec.get("required") for spec in inputs.values())


def test_outputs_come_from_the_scan_step(action: dict) -> None:
    outputs = action["outputs"]
    assert set(outputs) == {"report", "exit-code", *COUNT_KEYS}
    for name, spec in outputs.items():
        assert spec["value"] == f"${{{{ steps.scan.outputs.{name} }}}}"


def test_steps_wiring(action: dict) -> None:
    runs = action["runs"]
    assert runs["using"] == "composite"
    setup, install, scan = runs["steps"]
    assert setup["uses"].startswith("actions/setup-python@v")
    assert setup["with"]["python-version"] == "${{ inputs.python-version }}"
    assert install["env"]["VGATE_SOURCE"] == "${{ github.action_path }}"
    assert "pip install" in install["run"] and '"$VGATE_SOURCE"' in install["run"]
    assert install["env"]["VGATE_PYTHON"] == f"${{{{ steps.{setup['id']}.outputs.python-path }}}}"
    assert scan["id"] == "scan"
    assert "scripts/action-scan.sh" in scan["run"]
    expected_env = {
        "VGATE_PATHS": "paths",
        "VGATE_POLICY": "policy",
        "VGATE_FAIL_ON": "fail-on",
        "VGATE_FORMAT": "format",
        "VGATE_REPORT": "sarif-file",
        "VGATE_BASELINE": "baseline",
        "VGATE_EXTRA_ARGS": "extra-args",
    }
    assert scan["env"] == {k: f"${{{{ inputs.{v} }}}}" for k, v in expected_env.items()}
    for step in runs["steps"]:
        if "run" in step:
            assert step["shell"] == "bash"
            # Inputs reach shell code through env only (no expression injection).
            assert "${{" not in step["run"]
    script = SCRIPT.read_text(encoding="utf-8")
    for variable in expected_env:
        assert variable in script


def test_script_is_executable_bash() -> None:
    assert os.access(SCRIPT, os.X_OK)
    if shutil.which("bash"):
        subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


# --- scripts/action-scan.sh --------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with a prompts dir holding a safe and an unsafe file."""
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "safe.txt").write_text(
        "a golden retriever running through sunflowers\ntime-lapse of clouds over mountains\n",
        encoding="utf-8",
    )
    (prompts / "unsafe.txt").write_text(
        "# scenes for the trailer\n"
        "a chef flipping pancakes\n"
        "a naked woman posing on a bed\n"
        "a demon crawling out of a closet, horror movie\n",
        encoding="utf-8",
    )
    return tmp_path


def run_action(repo: Path, **inputs: str) -> tuple[int, dict[str, str], str]:
    """Run the script as the composite step would; return (exit code, outputs, stderr)."""
    github_output = repo / "github_output.txt"
    github_output.write_text("", encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "VGATE_CMD": f"{sys.executable} -m vgate.cli",
        "VGATE_PYTHON": sys.executable,
        "GITHUB_OUTPUT": str(github_output),
        "GITHUB_STEP_SUMMARY": str(repo / "step_summary.md"),
        "VGATE_PATHS": "prompts",
        # The rules detector needs no model file, so results are deterministic.
        "VGATE_EXTRA_ARGS": "--detector rules",
    }
    env.pop("NO_COLOR", None)
    env.update({f"VGATE_{k.upper()}": v for k, v in inputs.items()})
    proc = subprocess.run(
        ["bash", str(SCRIPT)], cwd=repo, env=env, capture_output=True, text=True, timeout=120
    )
    outputs = dict(
        line.split("=", 1) for line in github_output.read_text(encoding="utf-8").splitlines()
    )
    return proc.returncode, outputs, proc.stderr


def load_sarif(path: Path) -> dict:
    log = json.loads(path.read_text(encoding="utf-8"))
    validate_sarif(log)
    return log


@requires_bash
@pytest.mark.parametrize(("fail_on", "code"), [("block", 1), ("warn", 1), ("never", 0)])
def test_scan_writes_sarif_outputs_and_exit_code(repo: Path, fail_on: str, code: int) -> None:
    rc, outputs, stderr = run_action(repo, fail_on=fail_on)
    assert rc == code, stderr
    assert outputs == {
        "report": "vgate.sarif",
        "exit-code": str(code),
        "scanned": "5",
        "blocked": "1",
        "warned": "1",
        "suppressed": "0",
        "errors": "0",
    }
    log = load_sarif(repo / "vgate.sarif")
    results = log["runs"][0]["results"]
    assert {(r["ruleId"], r["level"]) for r in results} == {
        ("vgate/pornographic", "error"),
        ("vgate/terrifying", "warning"),
    }
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    assert uris == {"prompts/unsafe.txt"}
    lines = {r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in results}
    assert lines == {3, 4}
    assert "Scanned 5 prompts: 1 blocked" in (repo / "step_summary.md").read_text()


@requires_bash
def test_fail_on_block_passes_with_only_warnings(repo: Path) -> None:
    (repo / "prompts" / "unsafe.txt").write_text("a zombie in a nightmare\n", encoding="utf-8")
    rc, outputs, stderr = run_action(repo, fail_on="block")
    assert rc == 0, stderr
    assert (outputs["blocked"], outputs["warned"], outputs["exit-code"]) == ("0", "1", "0")
    rc, outputs, _ = run_action(repo, fail_on="warn")
    assert rc == 1 and outputs["exit-code"] == "1"


@requires_bash
def test_report_in_a_subdirectory_and_json_format(repo: Path) -> None:
    rc, outputs, stderr = run_action(repo, format="json", report="out/vgate.json")
    assert rc == 1, stderr
    assert outputs["report"] == "out/vgate.json"
    assert outputs["scanned"] == "5" and outputs["blocked"] == "1"
    doc = json.loads((repo / "out" / "vgate.json").read_text(encoding="utf-8"))
    assert len(doc["results"]) == 5


@requires_bash
def test_baseline_waives_known_findings(repo: Path) -> None:
    run_action(repo, fail_on="warn", report="base.sarif")
    rc, outputs, stderr = run_action(repo, fail_on="warn", baseline="base.sarif")
    assert rc == 0, stderr
    assert (outputs["blocked"], outputs["warned"], outputs["suppressed"]) == ("0", "0", "2")


@requires_bash
def test_usage_error_still_leaves_a_valid_sarif(repo: Path) -> None:
    stale = repo / "vgate.sarif"
    stale.write_text("stale", encoding="utf-8")
    rc, outputs, stderr = run_action(repo, policy="no-such-policy")
    assert rc == 2
    assert outputs["exit-code"] == "2"
    assert "no-such-policy" in stderr
    log = load_sarif(stale)
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert re.search(
        "no-such-policy", invocation["toolExecutionNotifications"][-1]["message"]["text"]
    )
    assert log["runs"][0]["results"] == []


@requires_bash
def test_unreadable_input_exits_2_with_notification(repo: Path) -> None:
    rc, outputs, _ = run_action(repo, paths="prompts missing.txt")
    assert rc == 2
    assert outputs["errors"] == "1" and outputs["scanned"] == "5"
    log = load_sarif(repo / "vgate.sarif")
    notes = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert any("missing.txt" in n["message"]["text"] for n in notes)
