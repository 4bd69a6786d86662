"""The README's examples run: every code block marked ``<!-- readme-test -->`` is executed.

- a ``console`` block: each ``$ command`` line runs in bash, in order, in one temporary
  directory holding a copy of ``examples/`` and a ``prompts/`` folder (the README's stand-in for
  the user's prompts); a command must exit 0 or 1 (1: findings), never 2 or more (an error);
- a ``python`` block: the code runs in a fresh interpreter, and the ``# `` comment lines that
  end the block are the output it must print, exactly.

Only fast, self-contained examples are marked (no ../shared, no downloads).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

MARKER = "<!-- readme-test -->"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)


def marked_blocks(text: str) -> list[tuple[str, str, int]]:
    """(language, code, line number) of every fenced block right after the marker line."""
    blocks = []
    for match in BLOCK.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        if before.strip() == MARKER:
            blocks.append((match.group(1), match.group(2), text[: match.start()].count("\n") + 1))
    return blocks


BLOCKS = marked_blocks((REPO / "README.md").read_text(encoding="utf-8"))


def _ids(block: tuple[str, str, int]) -> str:
    return f"README.md:{block[2]}-{block[0]}"


def expected_output(code: str) -> list[str]:
    """The ``# `` comment lines at the end of a python block, without the ``# ``."""
    lines = code.rstrip("\n").split("\n")
    out: list[str] = []
    while lines and lines[-1].startswith("# "):
        out.insert(0, lines.pop()[2:])
    return out


def test_the_readme_has_marked_examples() -> None:
    kinds = [lang for lang, _, _ in BLOCKS]
    assert "console" in kinds and "python" in kinds, "README examples lost their markers"


def test_marked_blocks_are_found_and_expected_output_is_parsed() -> None:
    code = "print(1)\n# not output\nprint(2)\n# 1\n# 2\n"
    text = f"x\n{MARKER}\n```python\n{code}```\n```bash\nno\n```\n"
    ((lang, code, line),) = marked_blocks(text)
    assert (lang, line) == ("python", 3)
    assert expected_output(code) == ["1", "2"]


@pytest.mark.parametrize("block", [b for b in BLOCKS if b[0] == "console"], ids=_ids)
def test_console_example_runs(block: tuple[str, str, int], tmp_path: Path) -> None:
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    (tmp_path / "prompts").mkdir()
    shutil.copy(REPO / "examples" / "prompts.txt", tmp_path / "prompts" / "prompts.txt")
    commands = [line[2:] for line in block[1].splitlines() if line.startswith("$ ")]
    assert commands
    env = {**os.environ, "NO_COLOR": "1", "REPO": str(REPO)}
    for command in commands:
        proc = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode in (0, 1), f"{command!r} exited {proc.returncode}: {proc.stderr}"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b[0] == "python"], ids=_ids)
def test_python_example_prints_what_the_readme_shows(block: tuple[str, str, int]) -> None:
    code = block[1]
    expected = expected_output(code)
    assert expected, "a marked python block ends with the output it prints, as '# ' comments"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip("\n").split("\n") == expected
