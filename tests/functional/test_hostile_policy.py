"""Hostile policies: regexes that would backtrack, YAML bombs, duplicate keys, deep nesting,
bad tagged values, special files and size caps. Each is a one-line error (exit 2) or runs in
linear time; nothing hangs, nothing prints a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import run_vgate, write
from vgate.errors import PolicyError
from vgate.files import MAX_POLICY_BYTES
from vgate.policy import load_policy
from vgate.safe_yaml import MAX_DEPTH, MAX_NODES, SHOWN_CHARS

# A 9-level "billion laughs": 9**9 strings once expanded, from a few hundred bytes.
ALIAS_BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{b}: &{b} [{','.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


def error_of(ref: str | Path) -> str:
    with pytest.raises(PolicyError) as info:
        load_policy(ref)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_backtracking_pattern_runs_in_linear_time(tmp_path: Path) -> None:
    # Python's re needs about 2**60 steps here: this only finishes because RE2 matches it.
    policy = write(
        tmp_path / "redos.yaml",
        "detectors: [rules]\ncategories:\n  violent_bloody:\n    patterns: ['(a+)+$']\n",
    )
    prompts = write(tmp_path / "p.txt", "a" * 60 + "b\n" + "a" * 60 + "\n")
    result = run_vgate("scan", str(prompts), "-p", str(policy), "-f", "json")
    assert result.code == 1, result.stderr
    decisions = {item["line"]: item["decision"] for item in json.loads(result.stdout)["results"]}
    assert decisions == {1: "allow", 2: "block"}


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(?<!not )kill", "invalid perl operator: (?<!"),
        (r"(\w+) \1", r"invalid escape sequence: \1"),
        (r"kill(?=ing)", "invalid perl operator: (?="),
        (r"(\w{100}){100}", "invalid repetition size"),
    ],
    ids=["lookbehind", "backreference", "lookahead", "huge-repetition"],
)
def test_policy_check_names_a_pattern_that_cannot_run_safely(
    tmp_path: Path, pattern: str, reason: str
) -> None:
    policy = write(
        tmp_path / "p.yaml", f"categories:\n  political:\n    patterns: ['ok', '{pattern}']\n"
    )
    result = run_vgate("policy", "check", str(policy))
    assert result.code == 2
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith(f"vgate: error: {policy}: categories.political.patterns[1]: ")
    assert reason in line and "RE2" in line


def test_re2_log_is_not_printed(tmp_path: Path) -> None:
    policy = write(tmp_path / "p.yaml", "categories:\n  political:\n    patterns: ['(?=x)']\n")
    result = run_vgate("policy", "check", str(policy))
    assert result.code == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    policy = write(tmp_path / "bomb.yaml", ALIAS_BOMB)
    assert len(ALIAS_BOMB.encode()) < 400
    message = error_of(policy)
    assert f"more than {MAX_NODES:,} values with aliases expanded" in message
    assert len(message) < 300


def test_alias_bomb_through_the_cli_stays_small(tmp_path: Path) -> None:
    policy = write(tmp_path / "bomb.yaml", ALIAS_BOMB)
    result = run_vgate("scan", "-t", "a cat", "-p", str(policy))
    assert result.code == 2
    assert len(result.stderr) < 300 and "lol" not in result.stderr


def test_moderate_aliases_still_work(tmp_path: Path) -> None:
    policy = write(
        tmp_path / "p.yaml",
        "categories:\n  political: {threshold: &t 0.3}\n  terrifying: {threshold: *t}\n",
    )
    loaded = load_policy(policy)
    assert loaded.categories["terrifying"].threshold == pytest.approx(0.3)


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    policy = write(tmp_path / "p.yaml", "description: &a [*a]\n")
    assert "recursive alias" in error_of(policy)


def test_duplicate_top_level_key_is_an_error(tmp_path: Path) -> None:
    policy = write(
        tmp_path / "p.yaml",
        "categories:\n  political: {action: block}\ncategories:\n  nudity: {}\n",
    )
    message = error_of(policy)
    assert "(line 3, column 1): duplicate key 'categories' (first on line 1)" in message


def test_duplicate_nested_key_is_an_error(tmp_path: Path) -> None:
    policy = write(
        tmp_path / "p.yaml", "categories:\n  political: {action: allow, action: block}\n"
    )
    assert "duplicate key 'action'" in error_of(policy)


def test_merge_key_may_override(tmp_path: Path) -> None:
    policy = write(
        tmp_path / "p.yaml",
        "categories:\n  political: &base {action: warn, threshold: 0.4}\n"
        "  terrifying: {<<: *base, action: block}\n",
    )
    loaded = load_policy(policy)
    assert loaded.categories["terrifying"].action == "block"
    assert loaded.categories["terrifying"].threshold == pytest.approx(0.4)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5_000, 200_000])
def test_deep_nesting_is_one_line(tmp_path: Path, depth: int) -> None:
    policy = write(tmp_path / "p.yaml", "description: " + "[" * depth + "]" * depth + "\n")
    assert f"nested deeper than {MAX_DEPTH} levels" in error_of(policy)


def test_deep_block_nesting_is_one_line(tmp_path: Path) -> None:
    text = "".join(" " * i + "- \n" for i in range(0, 2 * (MAX_DEPTH + 5), 2))
    policy = write(tmp_path / "p.yaml", "description:\n" + text)
    assert "nested deeper than" in error_of(policy)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("!!float 0x10", "cannot read '0x10' as float"),
        ("!!int 0b", "cannot read '0b' as int"),
        ("!!timestamp not-a-date", "cannot read 'not-a-date' as timestamp"),
        ("!!str [a, b]", "expected a scalar node"),
        ("!!python/object:os.system x", "python/object"),
    ],
)
def test_bad_tagged_values_are_one_line(tmp_path: Path, value: str, expected: str) -> None:
    policy = write(tmp_path / "p.yaml", f"categories:\n  political:\n    threshold: {value}\n")
    message = error_of(policy)
    assert "not valid YAML (line 3" in message and expected in message


def test_float_hex_through_the_cli_exits_2(tmp_path: Path) -> None:
    policy = write(tmp_path / "p.yaml", "categories:\n  political:\n    threshold: !!float 0x10\n")
    result = run_vgate("policy", "check", str(policy))
    assert result.code == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_values_in_errors_are_capped(tmp_path: Path) -> None:
    huge = "x" * 50_000
    for text in (
        f"version: {huge}\n",
        f"categories:\n  political:\n    action: {huge}\n",
        f"detectors: [rules, {huge}]\n",
        f"{huge}: 1\n",
        f"categories:\n  political:\n    patterns: ['({huge}']\n",
        "version: [" + ", ".join([f'"{"y" * 1000}"'] * 50) + "]\n",
    ):
        policy = write(tmp_path / "p.yaml", text)
        message = error_of(policy)
        assert len(message) < len(str(policy)) + 2 * SHOWN_CHARS + 300, message[:400]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")
def test_fifo_as_extends_target_does_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "base.yaml")
    policy = write(tmp_path / "p.yaml", "extends: ./base.yaml\n")
    result = run_vgate("policy", "check", str(policy))
    assert result.code == 2
    assert "base.yaml: policy file is a named pipe (FIFO), expected a regular file" in (
        result.stderr
    )


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero on this platform")
def test_extends_dev_zero_is_refused_without_reading(tmp_path: Path) -> None:
    policy = write(tmp_path / "p.yaml", "extends: /dev/zero\n")
    assert "/dev/zero: policy file is a character device, expected a regular file" in error_of(
        policy
    )


def test_policy_over_the_size_cap_is_refused(tmp_path: Path) -> None:
    policy = write(tmp_path / "p.yaml", "# " + "x" * MAX_POLICY_BYTES + "\nversion: 1\n")
    assert f"policy file larger than {MAX_POLICY_BYTES:,} bytes" in error_of(policy)


def test_policy_that_is_a_directory_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "dir.yaml").mkdir()
    assert "is a directory" in error_of(tmp_path / "dir.yaml")


def test_unreadable_policy_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = write(tmp_path / "p.yaml", "version: 1\n")
    real_open = os.open

    def deny(path: object, *args: object, **kwargs: object) -> int:
        if Path(str(path)) == policy:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", deny)
    assert error_of(policy) == f"{policy}: policy file permission denied"
