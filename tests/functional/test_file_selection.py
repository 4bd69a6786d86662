"""Which files ``vgate scan`` reads, through the CLI: ``--exclude``, ``.vgateignore``, the
policy's ``files.include``/``files.exclude`` and ``--diff-base`` on a real git repository."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import CliResult, write

SAFE = "a cat on a skateboard\n"
UNSAFE = "blood on a knife\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository-like folder as a newcomer has it: prompts, a requirements file and a
    metrics csv without a prompt column (both of which a plain ``vgate scan .`` trips over)."""
    (tmp_path / ".git").mkdir()
    write(tmp_path / "prompts" / "safe.txt", SAFE)
    write(tmp_path / "prompts" / "unsafe.txt", UNSAFE)
    write(tmp_path / "prompts" / "fixtures" / "bad.txt", UNSAFE)
    write(tmp_path / "requirements.txt", "numpy==1.26\n")
    write(tmp_path / "metrics" / "run.csv", "step,loss\n1,0.5\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def scanned(vgate_main, *args: str) -> tuple[CliResult, list[str]]:
    """Run ``vgate scan -d rules -f json ARGS``; the files that were read, in order."""
    result = vgate_main("scan", "-d", "rules", "-f", "json", "--fail-on", "never", *args)
    assert "Traceback" not in result.stderr
    if result.code == 2 and not result.stdout:
        return result, []
    report = json.loads(result.stdout)
    sources = [r["source"] for r in report["results"]]
    return result, list(dict.fromkeys(sources))


def test_plain_scan_of_the_repository_trips_over_non_prompt_files(vgate_main, project) -> None:
    result, files = scanned(vgate_main, ".")
    assert result.code == 2  # the metrics csv has no prompt column
    assert "requirements.txt" in files


def test_exclude_globs_are_repeatable_and_gitignore_like(vgate_main, project) -> None:
    result, files = scanned(
        vgate_main, ".", "--exclude", "requirements.txt", "--exclude", "metrics/"
    )
    assert result.code == 0, result.stderr
    assert files == ["prompts/fixtures/bad.txt", "prompts/safe.txt", "prompts/unsafe.txt"]
    assert "vgate: note: 2 files not scanned (--exclude)" in result.stderr


def test_exclude_applies_to_files_named_on_the_command_line(vgate_main, project) -> None:
    result, files = scanned(
        vgate_main, "prompts/unsafe.txt", "prompts/safe.txt", "--exclude", "unsafe.*"
    )
    assert files == ["prompts/safe.txt"]
    assert "1 file not scanned (--exclude)" in result.stderr


def test_vgateignore_is_found_at_the_repository_root(vgate_main, project, monkeypatch) -> None:
    write(project / ".vgateignore", "# not prompts\nrequirements.txt\nmetrics/\nfixtures/\n")
    monkeypatch.chdir(project / "prompts")  # found from a subfolder too
    result, files = scanned(vgate_main, "..")
    assert result.code == 0, result.stderr
    assert files == ["../prompts/safe.txt", "../prompts/unsafe.txt"]
    assert "3 files not scanned (.vgateignore)" in result.stderr
    result, files = scanned(vgate_main, "..", "--no-config")
    assert "../requirements.txt" in files and result.code == 2


def test_vgateignore_negation_keeps_a_file(vgate_main, project) -> None:
    write(project / ".vgateignore", "*.txt\n!prompts/unsafe.txt\nmetrics/\n")
    result, files = scanned(vgate_main, ".")
    assert files == ["prompts/unsafe.txt"], result.stderr


def test_policy_include_names_what_a_bare_scan_reads(vgate_main, project) -> None:
    write(
        project / ".vgate.yaml",
        "extends: default\nfiles:\n  include: ['prompts/**']\n  exclude: ['fixtures/']\n",
    )
    result, files = scanned(vgate_main)  # no path: the config's folder through files.include
    assert result.code == 0, result.stderr
    assert files == ["prompts/safe.txt", "prompts/unsafe.txt"]
    assert "files.exclude, files.include" in result.stderr
    # A file named on the command line is read even outside files.include, unless excluded.
    _, files = scanned(vgate_main, "requirements.txt", "prompts/fixtures/bad.txt")
    assert files == ["requirements.txt"]


def test_bare_scan_without_include_says_how_to_name_files(vgate_main, project) -> None:
    result = vgate_main("scan", "-d", "rules")
    assert result.code == 2
    assert "files.include" in result.stderr and "nothing to scan" in result.stderr


def test_policy_files_section_is_validated(vgate_main, project) -> None:
    write(project / ".vgate.yaml", "files:\n  include: prompts/\n")
    result = vgate_main("scan", "-d", "rules", ".")
    assert result.code == 2
    assert ".vgate.yaml: files.include: expected a list of strings" in result.stderr


# --- --diff-base on a real git repository -------------------------------------------------------

requires_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """main holds two prompt files; the branch changes one, adds one, deletes one and leaves an
    untracked file and an uncommitted edit."""
    git(tmp_path, "init", "-q", "-b", "main")
    write(tmp_path / "prompts" / "old.txt", SAFE)
    write(tmp_path / "prompts" / "edited.txt", SAFE)
    write(tmp_path / "prompts" / "gone.txt", SAFE)
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "base")
    git(tmp_path, "checkout", "-q", "-b", "feature")
    write(tmp_path / "prompts" / "edited.txt", SAFE + UNSAFE)
    write(tmp_path / "prompts" / "added.txt", UNSAFE)
    (tmp_path / "prompts" / "gone.txt").unlink()
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "change")
    write(tmp_path / "prompts" / "untracked.txt", SAFE)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@requires_git
def test_diff_base_reads_only_changed_files(vgate_main, repo) -> None:
    result, files = scanned(vgate_main, "prompts", "--diff-base", "main")
    assert result.code == 0, result.stderr
    assert files == ["prompts/added.txt", "prompts/edited.txt", "prompts/untracked.txt"]
    assert "1 unchanged file not scanned (--diff-base)" in result.stderr


@requires_git
def test_diff_base_includes_uncommitted_edits_and_combines_with_excludes(vgate_main, repo) -> None:
    write(repo / "prompts" / "old.txt", SAFE + SAFE)
    result, files = scanned(
        vgate_main, "prompts", "--diff-base", "main", "--exclude", "untracked.txt"
    )
    assert files == ["prompts/added.txt", "prompts/edited.txt", "prompts/old.txt"]
    assert "1 file not scanned (--exclude)" in result.stderr


@requires_git
def test_diff_base_from_a_subfolder(vgate_main, repo, monkeypatch) -> None:
    monkeypatch.chdir(repo / "prompts")
    _, files = scanned(vgate_main, ".", "--diff-base", "main")
    assert files == ["added.txt", "edited.txt", "untracked.txt"]


@requires_git
@pytest.mark.parametrize("ref", ["no-such-ref", "--output=x"])
def test_bad_diff_base_is_one_line_exit_2(vgate_main, repo, ref: str) -> None:
    result = vgate_main("scan", "-d", "rules", "prompts", f"--diff-base={ref}")
    assert result.code == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("vgate: error: --diff-base")


def test_diff_base_outside_a_repository_is_an_error(vgate_main, tmp_path, monkeypatch) -> None:
    write(tmp_path / "p.txt", SAFE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    result = vgate_main("scan", "-d", "rules", "p.txt", "--diff-base", "main")
    assert result.code == 2
    assert result.stderr.startswith("vgate: error: --diff-base: git rev-parse failed")
