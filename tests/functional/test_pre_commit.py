"""The pre-commit hooks (``.pre-commit-hooks.yaml``), run by ``pre-commit try-repo`` on a small
git repository with a safe and an unsafe prompt file.

``pre-commit try-repo`` runs the ``vgate-system`` hook (the installed vgate, no install step, so
the test needs no network). The ``vgate`` hook differs only in ``language: python`` (pre-commit
installs vgate-cli from this repository into its own environment, minutes from PyPI); the manifest
test holds the two to the same entry and files.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, vgate_exe, write

ROOT = REPO
HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))


def test_manifest_exposes_vgate_for_prompt_files() -> None:
    hooks = {hook["id"]: hook for hook in HOOKS}
    assert set(hooks) == {"vgate", "vgate-system"}
    assert hooks["vgate"]["language"] == "python"
    assert hooks["vgate-system"]["language"] == "system"
    for hook in hooks.values():
        assert hook["entry"].split()[:2] == ["vgate", "scan"]
        assert "--respect-include" in hook["entry"]
        assert hook["require_serial"] is True  # one process: the model loads once
        files = re.compile(hook["files"])
        for name in ("prompts.txt", "a/b/captions.csv", "logs.jsonl", "x.ndjson"):
            assert files.search(name), name
        for name in ("main.py", "README.md", "data.json", "clip.mp4"):
            assert not files.search(name), name
    own = ("id", "name", "language", "description")
    python, system = ({k: v for k, v in h.items() if k not in own} for h in hooks.values())
    assert python == system


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    write(repo / "safe.txt", "a cat on a skateboard\n")
    write(repo / "unsafe.txt", "a cat\nblood on a knife\n")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    return repo


def try_repo(repo: Path, *files: str) -> subprocess.CompletedProcess[str]:
    """``pre-commit try-repo <this repository> vgate-system --files FILES`` in ``repo``."""
    pre_commit = shutil.which("pre-commit")
    assert pre_commit, "pre-commit is missing: pip install -e '.[dev]'"
    vgate_bin = Path(vgate_exe()[0]).parent
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(repo.parent / "pre-commit-home"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PATH": os.pathsep.join([str(vgate_bin), os.environ.get("PATH", "")]),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [pre_commit, "try-repo", str(ROOT), "vgate-system", "--files", *files],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_try_repo_passes_a_safe_file_and_fails_an_unsafe_one(repo: Path) -> None:
    result = try_repo(repo, "safe.txt")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"vgate .*Passed", result.stdout)
    result = try_repo(repo, "safe.txt", "unsafe.txt")
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"vgate .*Failed", result.stdout)
    assert "unsafe.txt:2" in result.stdout and "safe.txt:1" not in result.stdout


def test_try_repo_respects_the_config(repo: Path) -> None:
    """pre-commit names every changed file: files.include and .vgateignore still decide."""
    write(repo / "prompts" / "unsafe.txt", "blood on a knife\n")
    write(repo / ".vgate.yaml", "extends: default\nfiles:\n  include: ['prompts/']\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    result = try_repo(repo, "unsafe.txt", "safe.txt")  # outside files.include
    assert result.returncode == 0, result.stdout + result.stderr
    result = try_repo(repo, "unsafe.txt", "prompts/unsafe.txt")
    assert result.returncode == 1 and "prompts/unsafe.txt:1" in result.stdout
    write(repo / ".vgateignore", "prompts/unsafe.txt\n")
    result = try_repo(repo, "prompts/unsafe.txt")
    assert result.returncode == 0, result.stdout + result.stderr
