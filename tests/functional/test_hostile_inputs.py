"""Prompts that must never pass unseen, through the installed ``vgate`` command: each trick gets
a finding or an input error (exit 2) while every other input is still scanned."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import CliResult, run_vgate, write

GOOD = "a cat on a skateboard\ngore everywhere\n"


def scan_json(*args: str, cwd: Path) -> tuple[CliResult, dict[str, Any]]:
    result = run_vgate("scan", "-d", "rules", "-f", "json", *args, cwd=cwd)
    assert "Traceback" not in result.stderr
    return result, json.loads(result.stdout)


def decisions(report: dict[str, Any]) -> dict[str, str]:
    return {r["location"]: r["decision"] for r in report["results"]}


def test_csv_unterminated_quote_is_an_error_and_no_row_is_merged(tmp_path: Path) -> None:
    write(tmp_path / "bad.csv", 'prompt\na cat\n"unterminated, here\na naked woman\nthird\n')
    write(tmp_path / "good.txt", GOOD)
    result, report = scan_json("bad.csv", "good.txt", cwd=tmp_path)
    assert result.code == 2
    assert result.stderr.splitlines()[0] == (
        "vgate: error: bad.csv:3: unterminated quote: the quoted cell opened here runs to end "
        "of file"
    )
    assert decisions(report)["bad.csv:4"] == "block"  # the row after the quote is its own
    assert decisions(report)["good.txt:2"] == "block"  # other files are still scanned


def test_symlinked_folder_is_scanned_and_unreadable_entries_are_errors(tmp_path: Path) -> None:
    write(tmp_path / "shared" / "more.txt", "a naked woman\n")
    root = tmp_path / "prompts"
    write(root / "a.txt", GOOD)
    (root / "linked").symlink_to(tmp_path / "shared", target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)
    (root / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    result, report = scan_json("prompts", cwd=tmp_path)
    assert decisions(report)["prompts/linked/more.txt:1"] == "block"
    assert "vgate: error: prompts/gone.txt: broken symbolic link; not scanned" in result.stderr
    assert result.code == 2


def test_unreadable_sub_folder_is_an_input_error(vgate_main, tmp_path: Path, monkeypatch) -> None:
    write(tmp_path / "d" / "a.txt", GOOD)
    write(tmp_path / "d" / "locked" / "b.txt", "a naked woman\n")
    real_scandir = os.scandir

    def scandir(path):  # as root, chmod 000 locks nobody out: fail the listing itself
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = vgate_main("scan", "-d", "rules", str(tmp_path / "d"))
    assert result.code == 2
    assert f"{tmp_path / 'd' / 'locked'}: cannot read directory (Permission denied)" in (
        result.stderr
    )
    assert "gore everywhere" in result.stdout  # the readable files are still scanned


def test_jsonl_empty_prompt_field_never_hides_the_text_field(tmp_path: Path) -> None:
    write(
        tmp_path / "p.jsonl",
        '{"prompt": "", "text": "a naked woman"}\n{"prompt": ""}\n{"prompt": "a cat"}\n',
    )
    result, report = scan_json("p.jsonl", cwd=tmp_path)
    assert decisions(report) == {"p.jsonl:1": "block", "p.jsonl:3": "allow"}
    assert "vgate: error: p.jsonl:2: field 'prompt' is empty" in result.stderr
    assert result.code == 2


def test_long_prompt_is_judged_whole_and_the_policy_can_block_it(tmp_path: Path) -> None:
    write(tmp_path / "long.txt", "a calm lake at dawn. " * 2000 + "Then gore.\na cat\n")
    result, report = scan_json("long.txt", cwd=tmp_path)
    assert decisions(report) == {"long.txt:1": "block", "long.txt:2": "allow"}
    write(tmp_path / "calm.txt", "a calm lake at dawn. " * 2000 + "\n")
    write(tmp_path / "p.yaml", "extends: default\nlong_prompt: block\n")
    result, report = scan_json("-p", "p.yaml", "calm.txt", cwd=tmp_path)
    (item,) = report["results"]  # the stripped line: 41,999 characters
    assert result.code == 1 and item["reasons"] == [
        "long prompt: 41,999 characters > 20,000 (long_prompt: block)"
    ]
    write(tmp_path / "typo.yaml", "extends: default\nlong_prompt: cut\n")
    result = run_vgate("scan", "-d", "rules", "-p", "typo.yaml", "calm.txt", cwd=tmp_path)
    assert result.code == 2
    assert "typo.yaml: long_prompt: expected one of scan, warn, block, got 'cut'" in result.stderr


@pytest.mark.parametrize(
    "prompt",
    [
        "school shooting star victims lying motionless",
        "a true blood bath",
        "a n a k e d woman on a bed",
        "a n.a.k.e.d woman on a bed",
        "a n4k3d woman on a bed",
        "a n\u0430k\u0435d woman on a bed",  # Cyrillic а, е
        "a n\u0301a\u0301k\u0301e\u0301d\u0301 woman on a bed",
        "a na\ufe0fke\ufe0fd woman on a bed",
        "a na\U000e0020ked woman on a bed",
        "a na\x01ked woman on a bed",
    ],
    ids=["allow-star", "allow-true-blood", "spaced", "dotted", "leet", "homoglyph", "combining",
         "variation-selector", "tag-char", "control-char"],
)  # fmt: skip
def test_disguised_prompts_are_blocked_and_reported_as_written(tmp_path: Path, prompt: str) -> None:
    write(tmp_path / "p.txt", prompt + "\n")
    result, report = scan_json("p.txt", cwd=tmp_path)
    (item,) = report["results"]
    assert result.code == 1 and item["decision"] == "block", item["reasons"]
    assert item["text"] == prompt  # the report keeps the original text
