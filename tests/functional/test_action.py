"""The composite GitHub Action: action.yml wiring, and scripts/action-scan.sh run locally.

The script runs one scan that prints annotations (``--format github``) and writes every report
with ``--report FORMAT=PATH``.
"""

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
        "paths": "",  # only what the config names; never the whole repository by default
        "policy": "",
        "exclude": "",
        "diff-base": "",
        "fail-on": "block",
        "annotations": "true",
        "sarif": "false",
        "upload-sarif": "false",
        "sarif-file": "vgate.sarif",
        "report-format": "",
        "report-file": "",
        "baseline": "",
        "extra-args": "",
        "python-version": "3.11",
    }
    assert all(spec.get("description") for spec in inputs.values())
    assert not any(spec.get("required") for spec in inputs.values())
    assert "code scanning" in inputs["upload-sarif"]["description"]


def test_outputs_come_from_the_scan_step(action: dict) -> None:
    outputs = action["outputs"]
    assert set(outputs) == {"report", "sarif-file", "exit-code", *COUNT_KEYS}
    for name, spec in outputs.items():
        assert spec["value"] == f"${{{{ steps.scan.outputs.{name} }}}}"


def steps_by_name(action: dict) -> dict[str, dict]:
    return {step["name"]: step for step in action["runs"]["steps"]}


def test_steps_wiring(action: dict) -> None:
    runs = action["runs"]
    assert runs["using"] == "composite"
    steps = steps_by_name(action)
    assert list(steps) == [
        "Set up Python",
        "Cache pip downloads",
        "Install vgate",
        "Scan prompts",
        "Upload SARIF to code scanning",
        "Fail on findings",
    ]
    setup, install, scan = steps["Set up Python"], steps["Install vgate"], steps["Scan prompts"]
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
        "VGATE_EXCLUDE": "exclude",
        "VGATE_DIFF_BASE": "diff-base",
        "VGATE_FAIL_ON": "fail-on",
        "VGATE_ANNOTATIONS": "annotations",
        "VGATE_SARIF_FILE": "sarif-file",
        "VGATE_REPORT_FORMAT": "report-format",
        "VGATE_REPORT_FILE": "report-file",
        "VGATE_BASELINE": "baseline",
        "VGATE_EXTRA_ARGS": "extra-args",
    }
    assert scan["env"] == {
        **{k: f"${{{{ inputs.{v} }}}}" for k, v in expected_env.items()},
        "VGATE_SARIF": "${{ inputs.sarif == 'true' || inputs.upload-sarif == 'true' }}",
        "VGATE_DEFER_EXIT": "true",
    }
    for step in runs["steps"]:
        if "run" in step:
            assert step["shell"] == "bash"
            # Inputs reach shell code through env only (no expression injection).
            assert "${{" not in step["run"]
    script = SCRIPT.read_text(encoding="utf-8")
    for variable in [*expected_env, "VGATE_SARIF", "VGATE_DEFER_EXIT"]:
        assert variable in script


def test_pip_cache_is_keyed_on_the_action_version(action: dict) -> None:
    steps = steps_by_name(action)
    cache, install = steps["Cache pip downloads"], steps["Install vgate"]
    assert cache["uses"].startswith("actions/cache@v")
    assert "${{ github.action_ref" in cache["with"]["key"]
    assert "steps.python.outputs.python-version" in cache["with"]["key"]
    assert install["env"]["PIP_CACHE_DIR"] == cache["with"]["path"]


def test_sarif_is_uploaded_only_when_asked_and_complete_and_the_job_fails_after(
    action: dict,
) -> None:
    steps = steps_by_name(action)
    upload, fail = steps["Upload SARIF to code scanning"], steps["Fail on findings"]
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@v")
    condition = upload["if"]
    assert "always()" in condition  # also when the scan found something
    assert "inputs.upload-sarif == 'true'" in condition
    assert "steps.scan.outputs.sarif-ready == 'true'" in condition  # never a half-written log
    assert upload["with"]["sarif_file"] == "${{ steps.scan.outputs.sarif-file }}"
    assert fail["if"] == "always()"
    assert fail["env"]["VGATE_EXIT_CODE"] == "${{ steps.scan.outputs.exit-code }}"
    for code, expected in (("0", 0), ("1", 1), ("2", 2), ("", 2)):
        proc = subprocess.run(
            ["bash", "-c", fail["run"]],
            env={**os.environ, "VGATE_EXIT_CODE": code, "VGATE_FAIL_ON": "block"},
            capture_output=True,
        )
        assert proc.returncode == expected


def test_script_is_executable_bash() -> None:
    assert os.access(SCRIPT, os.X_OK)
    if shutil.which("bash"):
        subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


# --- scripts/action-scan.sh --------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with a prompts dir holding a safe and an unsafe file, and the files an
    ordinary repository has that are no prompts."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    prompts = repo / "prompts"
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
    (repo / "requirements.txt").write_text("numpy==1.26\n", encoding="utf-8")
    (repo / "metrics.csv").write_text("step,loss\n1,0.5\n", encoding="utf-8")
    return repo


def run_action(repo: Path, **inputs: str) -> tuple[int, dict[str, str], str, str]:
    """Run the script as the composite step would; (exit code, outputs, stdout, stderr)."""
    runner = repo.parent / "runner"  # outside the workspace, as on a GitHub runner
    runner.mkdir(exist_ok=True)
    github_output = runner / "github_output.txt"
    github_output.write_text("", encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "VGATE_CMD": f"{sys.executable} -m vgate.cli",
        "VGATE_PYTHON": sys.executable,
        "GITHUB_OUTPUT": str(github_output),
        "GITHUB_STEP_SUMMARY": str(runner / "step_summary.md"),
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
    return proc.returncode, outputs, proc.stdout, proc.stderr


def load_sarif(path: Path) -> dict:
    log = json.loads(path.read_text(encoding="utf-8"))
    validate_sarif(log)
    return log


def annotations(stdout: str) -> list[tuple[str, str]]:
    """(level, properties) of each workflow command in the log."""
    return re.findall(r"^::(error|warning) ([^:]*)::", stdout, flags=re.MULTILINE)


@pytest.mark.parametrize(("fail_on", "code"), [("block", 1), ("warn", 1), ("never", 0)])
@requires_bash
def test_annotations_by_default_and_counts(repo: Path, fail_on: str, code: int) -> None:
    rc, outputs, stdout, stderr = run_action(repo, fail_on=fail_on)
    assert rc == code, stderr
    assert outputs == {
        "report": "",
        "sarif-file": "",
        "sarif-ready": "false",
        "exit-code": str(code),
        "scanned": "5",
        "blocked": "1",
        "warned": "1",
        "suppressed": "0",
        "errors": "0",
    }
    found = annotations(stdout)
    assert [level for level, _ in found] == ["error", "warning"]
    assert all("file=prompts/unsafe.txt" in props for _, props in found)
    assert ["line=3" in found[0][1], "line=4" in found[1][1]] == [True, True]
    assert not (repo / "vgate.sarif").exists()
    summary = (repo.parent / "runner" / "step_summary.md").read_text(encoding="utf-8")
    assert "Scanned 5 prompts: 1 blocked" in summary


@requires_bash
def test_sarif_when_upload_is_asked_in_the_same_scan(repo: Path) -> None:
    rc, outputs, stdout, stderr = run_action(repo, sarif="true", sarif_file="out/vgate.sarif")
    assert rc == 1, stderr
    assert (outputs["sarif-file"], outputs["sarif-ready"]) == ("out/vgate.sarif", "true")
    assert stderr.count("+ ") == 1 and "--report sarif=out/vgate.sarif" in stderr  # one scan
    assert len(annotations(stdout)) == 2
    log = load_sarif(repo / "out" / "vgate.sarif")
    results = log["runs"][0]["results"]
    assert {(r["ruleId"], r["level"]) for r in results} == {
        ("vgate/pornographic", "error"),
        ("vgate/terrifying", "warning"),
    }
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    assert uris == {"prompts/unsafe.txt"}


@requires_bash
def test_default_paths_without_config_fail_with_how_to_set_paths(repo: Path) -> None:
    rc, outputs, stdout, _ = run_action(repo, paths="")
    assert rc == 2
    assert outputs["exit-code"] == "2" and outputs["scanned"] == ""
    assert "::error title=vgate::nothing to scan: set the action's paths input" in stdout


@requires_bash
def test_default_paths_scan_only_what_the_config_names(repo: Path) -> None:
    (repo / ".vgate.yaml").write_text(
        "extends: default\nfiles:\n  include: ['prompts/']\n", encoding="utf-8"
    )
    rc, outputs, _, stderr = run_action(repo, paths="", report_format="json")
    assert rc == 1, stderr
    assert outputs["report"] == "vgate-report.json"
    doc = json.loads((repo / "vgate-report.json").read_text(encoding="utf-8"))
    assert {r["source"] for r in doc["results"]} == {"prompts/safe.txt", "prompts/unsafe.txt"}
    assert outputs["scanned"] == "5" and outputs["errors"] == "0"


@requires_bash
def test_exclude_input(repo: Path) -> None:
    rc, outputs, _, stderr = run_action(repo, paths=".", exclude="requirements.txt *.csv")
    assert rc == 1, stderr
    assert outputs["scanned"] == "5" and outputs["errors"] == "0"


@requires_bash
def test_deferred_exit_leaves_the_code_to_the_last_step(repo: Path) -> None:
    rc, outputs, _, _ = run_action(repo, defer_exit="true")
    assert rc == 0 and outputs["exit-code"] == "1"


@requires_bash
def test_annotations_off_prints_the_table(repo: Path) -> None:
    rc, _, stdout, _ = run_action(repo, annotations="false")
    assert rc == 1
    assert annotations(stdout) == [] and "naked woman" in stdout


@requires_bash
def test_baseline_waives_known_findings(repo: Path) -> None:
    run_action(repo, fail_on="warn", report_format="sarif", report_file="base.sarif")
    rc, outputs, _, stderr = run_action(repo, fail_on="warn", baseline="base.sarif")
    assert rc == 0, stderr
    assert (outputs["blocked"], outputs["warned"], outputs["suppressed"]) == ("0", "0", "2")


@requires_bash
def test_usage_error_replaces_a_stale_sarif_with_a_complete_one(repo: Path) -> None:
    stale = repo / "vgate.sarif"
    stale.write_text('{"runs": [', encoding="utf-8")  # half-written by an earlier run
    rc, outputs, stdout, stderr = run_action(repo, sarif="true", policy="no-such-policy")
    assert rc == 2
    assert outputs["exit-code"] == "2" and outputs["sarif-ready"] == "true"
    assert "no-such-policy" in stderr and "::error title=vgate::" in stdout
    log = load_sarif(stale)
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert re.search(
        "no-such-policy", invocation["toolExecutionNotifications"][-1]["message"]["text"]
    )
    assert log["runs"][0]["results"] == []


@requires_bash
def test_unreadable_input_exits_2_with_notification(repo: Path) -> None:
    rc, outputs, _, _ = run_action(repo, paths="prompts missing.txt", sarif="true")
    assert rc == 2
    assert outputs["errors"] == "1" and outputs["scanned"] == "5"
    log = load_sarif(repo / "vgate.sarif")
    notes = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert any("missing.txt" in n["message"]["text"] for n in notes)
