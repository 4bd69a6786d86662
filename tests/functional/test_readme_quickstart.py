"""README's quick start and its GitHub Action example run as written, with the installed
``vgate``, in a copy of the repository's files they name."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO, vgate_exe

ROOT = REPO
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = README.index(f"\n{title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def console_commands(text: str) -> list[str]:
    """The ``$ command`` lines of the ```console blocks, trailing comments dropped."""
    blocks = re.findall(r"```console\n(.*?)```", text, flags=re.DOTALL)
    lines = [line[2:] for block in blocks for line in block.splitlines() if line.startswith("$ ")]
    return [re.sub(r"\s+#.*$", "", line).strip() for line in lines]


QUICK_START = console_commands(section("## Quick start"))


def test_quick_start_names_only_files_the_repository_has() -> None:
    assert len(QUICK_START) >= 4
    for command in QUICK_START:
        for arg in shlex.split(command)[1:]:
            if "/" in arg and not arg.startswith("-"):
                assert (ROOT / arg).exists(), f"{command}: {arg} is not in the repository"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's example files, where the quick start's commands write their output."""
    where = tmp_path_factory.mktemp("checkout")
    shutil.copytree(ROOT / "examples", where / "examples")
    return where


@pytest.mark.parametrize("command", QUICK_START)
def test_quick_start_command_runs_as_written(checkout: Path, command: str) -> None:
    args = shlex.split(command)
    assert args[0] == "vgate"
    proc = subprocess.run(
        [*vgate_exe(), *args[1:]],
        cwd=checkout,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=300,
    )
    assert "Traceback" not in proc.stderr and "vgate: error" not in proc.stderr, proc.stderr
    if "--help" in args or args[1] == "init":
        assert proc.returncode == 0
        return
    assert proc.returncode == 1, proc.stderr  # the examples hold unsafe prompts
    if "--text" in args:
        (result,) = json.loads(proc.stdout)["results"]
        claimed = re.search(r"the embedded model scores it\s+(\d\.\d\d)\s+(\w+)", README)
        assert claimed, "README's claim about the --text example is gone"
        category = claimed.group(2)
        assert result["decision"] == "block"
        assert f"{result['detector_scores']['model'][category]:.2f}" == claimed.group(1)
    if "--output" in args:
        log = json.loads((checkout / args[args.index("--output") + 1]).read_text())
        assert log["runs"][0]["results"]


def test_action_script_example_runs_as_written() -> None:
    (command,) = console_commands(section("## GitHub Action"))
    assert command.startswith("VGATE_PATHS=examples ")
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(vgate_exe()[0]).parent), os.environ["PATH"]]),
    }
    proc = subprocess.run(
        ["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 1, proc.stderr
    assert re.search(r"^::error file=examples/prompts.txt,line=\d+", proc.stdout, re.MULTILINE)
    assert re.search(r"^blocked=[1-9]", proc.stdout, re.MULTILINE)
