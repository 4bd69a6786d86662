"""One CLI: ``-o/--output`` is the report everywhere, real metavars in every --help, help that
needs no optional dependency, helpful errors, plurals, and tables that CI logs do not cut."""

from __future__ import annotations

import importlib.util
import io
import os
import re
import subprocess
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import tomllib
import typer
from packaging.requirements import Requirement

from tests.helpers import REPO, vgate_exe, write
from vgate.cli import app
from vgate.core.findings import ScanMeta
from vgate.core.gate import Gate
from vgate.core.runner import run_scan
from vgate.inputs import text_records
from vgate.reports import make_reporter

ROOT = REPO
RAW_TYPE = re.compile(r"<(list\[\w+\]|bool|str|int|float|path|file|dir)>", re.IGNORECASE)


def commands() -> list[tuple[str, ...]]:
    """Every command path of the CLI (``("scan",)``, ``("probe", "collect")``, ...)."""
    found: list[tuple[str, ...]] = [()]

    def walk(group: Any, prefix: tuple[str, ...]) -> None:
        for name, command in group.commands.items():
            found.append((*prefix, name))
            if hasattr(command, "commands"):  # a group (typer's own click classes)
                walk(command, (*prefix, name))

    walk(typer.main.get_command(app), ())
    return found


def all_params() -> list[tuple[tuple[str, ...], Any]]:
    root = typer.main.get_command(app)
    params = []
    for path in commands():
        command: Any = root
        for name in path:
            command = command.commands[name]  # type: ignore[attr-defined]
        params += [(path, p) for p in command.params]
    return params


@pytest.mark.parametrize("path", commands(), ids=lambda p: " ".join(p) or "vgate")
def test_help_has_real_metavars_and_no_raw_types(vgate_main, path: tuple[str, ...]) -> None:
    result = vgate_main(*path, "--help")
    assert result.code == 0, result.stderr
    assert "usage: " in result.stdout.lower()
    assert not RAW_TYPE.search(result.stdout), RAW_TYPE.search(result.stdout)
    for line in result.stdout.splitlines():
        # "-o, --output FILE  help": every option that takes a value names it in capitals
        match = re.match(r"^\s+(?:-\w, )?(--[\w-]+)(?: ([^\s]+))?\s{2,}", line)
        if match and match.group(2):
            assert re.fullmatch(r"[A-Z][A-Z|=_.]*|/?\s*--[\w-]+", match.group(2)), line


def test_output_means_the_report_everywhere() -> None:
    for path, param in all_params():
        opts = set(getattr(param, "opts", [])) | set(getattr(param, "secondary_opts", []))
        if getattr(param, "hidden", False):  # old spellings, deprecated
            continue
        if "-o" in opts or "--output" in opts:
            assert opts == {"-o", "--output"}, (path, opts)
            assert re.search(r"report|metrics", param.help or "", re.IGNORECASE), (path, param.help)
        assert "--out" not in opts, (path, opts)
    names = {(path, opt) for path, p in all_params() for opt in getattr(p, "opts", [])}
    assert (("generate",), "--video") in names
    assert (("probe", "collect"), "--out-dir") in names
    assert (("probe", "train"), "--out-dir") in names


def test_old_spellings_still_work_hidden_and_deprecated(vgate_main, tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    args = ["generate", "a naked woman in a porn video, nsfw", "--model", str(tmp_path / "none")]
    args += ["--guarded", "--probe", str(tmp_path / "none"), "-f", "json"]
    result = vgate_main(*args, "--out", str(video))  # blocked by the prompt gate first
    assert result.code == 1, result.stderr
    assert "vgate: warning: --out is deprecated; use --video" in result.stderr
    result = vgate_main(*args, "--out", str(video), "--video", str(video))
    assert result.code == 2 and "give --video only" in result.stderr
    assert "--out " not in vgate_main("generate", "--help").stdout


@pytest.fixture
def without(monkeypatch: pytest.MonkeyPatch):
    """Make optional modules look uninstalled to ``importlib.util.find_spec``."""
    real = importlib.util.find_spec

    def hide(*modules: str) -> None:
        monkeypatch.setattr(
            importlib.util,
            "find_spec",
            lambda name, *a, **k: None if name in modules else real(name, *a, **k),
        )

    return hide


def test_model_train_help_needs_no_torch(vgate_main, without) -> None:
    without("torch", "sklearn")
    result = vgate_main("model", "train", "--help")
    assert result.code == 0, result.stderr
    assert "Usage: vgate model train" in result.stdout
    assert "pip install 'vgate-cli[train]' (not installed: torch, sklearn)" in result.stdout
    result = vgate_main("model", "train", "--data", "x.csv")
    assert result.code == 2 and "'torch' package" in result.stderr


def test_generate_without_torch_says_so_first(vgate_main, without, tmp_path: Path) -> None:
    without("torch")
    result = vgate_main(
        "generate", "a naked woman, nsfw", "--model", str(tmp_path), "--guarded", "-f", "json"
    )
    assert result.code == 2 and result.stdout == ""
    assert result.stderr == (
        "vgate: error: this command needs the 'torch' package; "
        "install it with: pip install 'vgate-cli[generate]'\n"
    )


def test_unknown_builtin_model_lists_the_builtin_models(vgate_main) -> None:
    result = vgate_main("scan", "--text", "a cat", "--model", "builtin:nope")
    assert result.code == 2
    builtins = sorted(p.name for p in (ROOT / "models").iterdir() if p.is_dir())
    assert builtins and all(f"builtin:{name}" in result.stderr for name in builtins)


def test_plurals_in_the_summary_line(vgate_main, tmp_path: Path) -> None:
    prompts = write(tmp_path / "p.txt", "a cat\n")
    result = vgate_main("scan", "-d", "rules", str(prompts), str(tmp_path / "missing.txt"))
    assert "Scanned 1 prompt: 0 blocked, 0 warned, 0 suppressed, 1 error in" in result.stdout
    result = vgate_main("scan", "-d", "rules", "-f", "json", str(prompts), str(prompts))
    assert "vgate: scanned 2 prompts: 0 blocked, 0 warned, 0 suppressed, 0 errors in" in (
        result.stderr
    )


def test_elapsed_time_counts_from_the_start_of_the_command() -> None:
    """The scan's time starts where the command started (model loading included), not when the
    first prompt is read: run_scan takes that start."""
    out = io.StringIO()
    reporter = make_reporter("json", out)
    meta = ScanMeta(policy="default", detectors=["rules"], command_line=[], start_time_utc="")
    reporter.start(meta)
    began = time.perf_counter() - 3600.0  # as if loading had taken an hour
    summary = run_scan(text_records(["a cat"]), Gate(detectors="rules"), reporter, started=began)
    assert summary.seconds >= 3600.0


def test_table_cells_are_not_cut_off_a_terminal(tmp_path: Path) -> None:
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "prompts-for-the-trailer.txt"
    write(deep, "blood on a knife\n")
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}  # what many CI runners report
    proc = subprocess.run(
        [*vgate_exe(), "scan", "-d", "rules", str(deep)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert f"{deep}:1" in proc.stdout  # the whole location on one line, not folded at 80


def test_typer_is_pinned_to_the_tested_range() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (typer_req,) = [
        Requirement(r) for r in pyproject["project"]["dependencies"] if r.startswith("typer")
    ]
    assert typer_req.specifier and "<" in str(typer_req.specifier)  # an upper bound
    assert typer_req.specifier.contains(version("typer"))
