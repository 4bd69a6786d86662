"""Configuration discovery: ``.vgate.yaml``, ``vgate.yaml`` or ``[tool.vgate]`` in pyproject.toml,
from the working directory up to the repository root; ``--policy`` wins; ``--no-config``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_vgate, write

# A policy that blocks a word no shipped policy knows, so the test sees which policy was used.
PINEAPPLE = (
    "extends: default\ndetectors: [rules]\ncategories:\n  distorted_weird:\n"
    "    terms: [pineapple]\n    action: block\n"
)
PINEAPPLE_TOML = """
[tool.vgate]
extends = "default"
detectors = ["rules"]

[tool.vgate.categories.distorted_weird]
terms = ["pineapple"]
action = "block"
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp/outer/repo`` (with .git) and a working directory ``repo/sub/dir``."""
    root = tmp_path / "outer" / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "sub" / "dir").mkdir(parents=True)
    monkeypatch.chdir(root / "sub" / "dir")
    return root


def decision(vgate_main, *args: str) -> str:
    result = vgate_main("scan", "-d", "rules", "-f", "json", "--text", "a pineapple", *args)
    assert result.code in (0, 1), result.stderr
    return json.loads(result.stdout)["results"][0]["decision"]


@pytest.mark.parametrize("name", [".vgate.yaml", "vgate.yaml"])
def test_yaml_config_at_the_repository_root_is_found_from_a_subfolder(
    vgate_main, repo: Path, name: str
) -> None:
    assert decision(vgate_main) == "allow"
    write(repo / name, PINEAPPLE)
    assert decision(vgate_main) == "block"


def test_pyproject_tool_vgate_table(vgate_main, repo: Path) -> None:
    write(repo / "pyproject.toml", "[project]\nname = 'x'\n" + PINEAPPLE_TOML)
    assert decision(vgate_main) == "block"


def test_pyproject_without_tool_vgate_is_passed_over(vgate_main, repo: Path) -> None:
    write(repo / "sub" / "pyproject.toml", "[project]\nname = 'x'\n")
    write(repo / ".vgate.yaml", PINEAPPLE)
    assert decision(vgate_main) == "block"


def test_nearest_config_wins(vgate_main, repo: Path) -> None:
    write(repo / ".vgate.yaml", PINEAPPLE)
    write(repo / "sub" / "vgate.yaml", "extends: default\n")
    assert decision(vgate_main) == "allow"


def test_search_stops_at_the_repository_root(vgate_main, repo: Path) -> None:
    write(repo.parent / ".vgate.yaml", PINEAPPLE)
    assert decision(vgate_main) == "allow"


def test_policy_option_wins_and_no_config_disables(vgate_main, repo: Path) -> None:
    write(repo / ".vgate.yaml", PINEAPPLE)
    assert decision(vgate_main, "--policy", "default") == "allow"
    assert decision(vgate_main, "--no-config") == "allow"


def test_broken_pyproject_fails_closed(vgate_main, repo: Path) -> None:
    write(repo / "pyproject.toml", "[tool.vgate\n")
    result = vgate_main("scan", "-d", "rules", "--text", "a cat")
    assert result.code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("vgate: error: ") and "pyproject.toml: not valid TOML" in line


def test_invalid_discovered_config_names_the_file(vgate_main, repo: Path) -> None:
    write(repo / ".vgate.yaml", "categories:\n  nude: {}\n")
    result = vgate_main("scan", "--text", "a cat")
    assert result.code == 2
    assert "../../.vgate.yaml: categories.nude: unknown key" in result.stderr


def test_policy_show_says_which_file_was_used(vgate_main, repo: Path) -> None:
    result = vgate_main("policy", "show")
    assert result.stdout.splitlines()[0].startswith("# resolved policy: default (shipped default;")
    write(repo / "pyproject.toml", PINEAPPLE_TOML)
    result = vgate_main("policy", "show")
    assert result.code == 0
    assert result.stdout.splitlines()[0] == "# resolved policy: ../../pyproject.toml (discovered)"
    assert "pineapple" in result.stdout
    result = vgate_main("policy", "show", "--no-config")
    assert "discovery off (--no-config)" in result.stdout.splitlines()[0]


def test_discovery_from_the_installed_command(repo: Path) -> None:
    write(repo / ".vgate.yaml", PINEAPPLE)
    result = run_vgate("scan", "--text", "a pineapple", cwd=Path.cwd())
    assert result.code == 1, result.stderr
    result = run_vgate("policy", "show", cwd=Path.cwd())
    assert result.stdout.startswith("# resolved policy: ../../.vgate.yaml (discovered)\n")
