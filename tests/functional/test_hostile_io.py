"""Hostile files and streams: FIFOs and devices, closed or repeated stdin, unreadable files,
terminal escape sequences in prompts and file names, and eval's label message."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest

from tests.helpers import CliResult, run_vgate, vgate_exe, write
from vgate.core import baseline as baseline_module
from vgate.terminal import terminal_safe

RULES = ("-d", "rules")
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
ESCAPES = "\x1b[2J\x1b[1A\x1b]0;owned\x07\x9b31m\u202eevil\u2066"
"""Erase screen, cursor up, OSC window title, C1 CSI, bidi override and isolate."""


def error_lines(result: CliResult) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("vgate: error: ")]


# --- special files -----------------------------------------------------------------------------


@needs_fifo
def test_fifo_prompt_file_is_an_input_error_and_others_are_scanned(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    prompts = write(tmp_path / "p.txt", "naked person\n")
    result = run_vgate("scan", *RULES, str(tmp_path / "pipe.txt"), str(prompts), "-f", "json")
    assert result.code == 2
    assert error_lines(result) == [
        f"vgate: error: {tmp_path / 'pipe.txt'}: is a named pipe (FIFO), expected a regular file"
    ]
    report = json.loads(result.stdout)
    assert [item["decision"] for item in report["results"]] == ["block"]


@needs_fifo
def test_fifo_with_progress_does_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    result = run_vgate("scan", *RULES, "--progress", str(tmp_path / "pipe.txt"))
    assert result.code == 2 and "named pipe (FIFO)" in result.stderr


@needs_fifo
def test_fifo_video_is_an_input_error(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "clip.mp4")
    result = run_vgate("scan", *RULES, str(tmp_path / "clip.mp4"))
    assert result.code == 2 and "clip.mp4: is a named pipe (FIFO)" in result.stderr


@needs_fifo
def test_fifo_baseline_does_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "base.json")
    result = run_vgate("scan", *RULES, "-t", "a cat", "--baseline", str(tmp_path / "base.json"))
    assert result.code == 2
    assert error_lines(result) == [
        f"vgate: error: baseline {tmp_path / 'base.json'}: is a named pipe (FIFO), expected a "
        "regular file"
    ]


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
@pytest.mark.parametrize("option", ["--baseline", "--policy"])
def test_dev_zero_is_refused_without_reading(option: str) -> None:
    result = run_vgate("scan", *RULES, "-t", "a cat", option, "/dev/zero")
    assert result.code == 2
    assert "/dev/zero: " in result.stderr and "character device" in result.stderr
    assert len(error_lines(result)) == 1


def test_baseline_over_the_size_cap(vgate_main, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(baseline_module, "MAX_BASELINE_BYTES", 100)
    base = write(tmp_path / "b.json", '{"tool": {"name": "vgate"}, "results": []}' + " " * 100)
    result = vgate_main("scan", *RULES, "-t", "a cat", "--baseline", str(base))
    assert result.code == 2
    assert error_lines(result) == [f"vgate: error: baseline {base}: larger than 100 bytes"]


def test_deeply_nested_baseline_is_one_line(vgate_main, tmp_path: Path) -> None:
    base = write(tmp_path / "b.json", "[" * 100_000 + "]" * 100_000)
    result = vgate_main("scan", *RULES, "-t", "a cat", "--baseline", str(base))
    assert result.code == 2 and len(error_lines(result)) == 1


# --- stdin -------------------------------------------------------------------------------------


def test_stdin_twice_is_a_usage_error(vgate_main) -> None:
    result = vgate_main("scan", *RULES, "-", "-", stdin=b"a cat\n")
    assert result.code == 2
    assert error_lines(result) == ["vgate: error: - (standard input) can be given only once"]
    assert result.stdout == ""


def test_closed_stdin_is_a_usage_error() -> None:
    command = " ".join(shlex.quote(part) for part in [*vgate_exe(), "scan", *RULES, "-"])
    proc = subprocess.run(
        ["sh", "-c", f"exec {command} <&-"], capture_output=True, timeout=120, check=False
    )
    stderr = proc.stderr.decode()
    assert proc.returncode == 2, stderr
    assert stderr == "vgate: error: - reads standard input, but standard input is closed\n"


# --- unreadable files given directly ----------------------------------------------------------


@pytest.fixture
def deny_open(monkeypatch: pytest.MonkeyPatch):
    """Make ``os.open`` of the given paths fail with EACCES (tests run as root, too)."""

    def deny(*denied: Path) -> None:
        real_open = os.open

        def fake_open(path, *args, **kwargs):
            if any(Path(os.fsdecode(path)) == d for d in denied):
                raise PermissionError(13, "Permission denied", os.fsdecode(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", fake_open)

    return deny


def test_unreadable_prompt_file_is_one_line_and_others_are_scanned(
    vgate_main, tmp_path: Path, deny_open
) -> None:
    secret = write(tmp_path / "secret.txt", "naked person\n")
    other = write(tmp_path / "other.txt", "naked person\n")
    deny_open(secret)
    result = vgate_main("scan", *RULES, "-f", "json", str(secret), str(other))
    assert result.code == 2
    assert error_lines(result) == [f"vgate: error: {secret}: permission denied"]
    assert len(json.loads(result.stdout)["results"]) == 1


@pytest.mark.parametrize("option", ["--baseline", "--policy"])
def test_unreadable_baseline_or_policy_is_one_line(
    vgate_main, tmp_path: Path, deny_open, option: str
) -> None:
    target = write(tmp_path / "x.yaml", "version: 1\n")
    deny_open(target)
    result = vgate_main("scan", *RULES, "-t", "a cat", option, str(target))
    assert result.code == 2
    (line,) = error_lines(result)
    assert line.endswith("permission denied") and str(target) in line


def test_unreadable_eval_data_is_one_line(vgate_main, tmp_path: Path, deny_open) -> None:
    data = write(tmp_path / "d.csv", "id,text,label\n1,a cat,safe\n")
    deny_open(data)
    result = vgate_main("eval", "--data", str(data), *RULES)
    assert result.code == 2
    assert error_lines(result) == [f"vgate: error: {data}: permission denied"]


# --- terminal injection ------------------------------------------------------------------------


def test_terminal_safe_spells_out_every_control() -> None:
    text = "ok " + ESCAPES + "\x00\x7f\x85\u2028\ud8ff\n\t\r"
    safe = terminal_safe(text)
    assert safe.isprintable() and safe.startswith("ok \\x1b[2J\\x1b[1A\\x1b]0;owned\\x07")
    assert "\\x9b31m\\u202eevil\\u2066\\x00\\x7f\\x85\\u2028\\ud8ff\\x0a\\x09\\x0d" in safe
    assert terminal_safe("plain café 東京") == "plain café 東京"


def test_table_report_shows_escapes_not_raw_sequences(vgate_main, tmp_path: Path) -> None:
    name = tmp_path / f"n{ESCAPES}.txt"
    write(name, f"naked person {ESCAPES}\n")
    result = vgate_main("scan", *RULES, str(name))
    assert result.code == 1
    for raw in ("\x1b", "\x07", "\x9b", "\u202e", "\u2066"):
        assert raw not in result.stdout
    assert "\\x1b[2J" in result.stdout and "\\u202e" in result.stdout


def test_stderr_lines_show_escapes_not_raw_sequences(vgate_main, tmp_path: Path) -> None:
    bad = write(tmp_path / f"b{ESCAPES}.jsonl", "not json\n")
    missing = str(tmp_path / f"gone{ESCAPES}.txt")
    result = vgate_main("scan", *RULES, str(bad), missing, "-f", "json")
    assert result.code == 2
    for raw in ("\x1b", "\x07", "\x9b", "\u202e", "\u2066"):
        assert raw not in result.stderr
    lines = error_lines(result)
    assert len(lines) == 2 and all("\\x1b]0;owned\\x07" in line for line in lines)


def test_policy_error_and_usage_error_are_escaped(vgate_main, tmp_path: Path) -> None:
    policy = write(tmp_path / "p.yaml", f"categories:\n  political:\n    action: '{ESCAPES}'\n")
    for result in (
        vgate_main("scan", "-t", "x", "-p", str(policy)),
        vgate_main("scan", "-t", "x", "--format", ESCAPES),
    ):
        assert result.code == 2
        assert "\x1b" not in result.stderr and "\u202e" not in result.stderr
        assert len(error_lines(result)) == 1


def test_json_and_sarif_keep_the_exact_text(vgate_main, tmp_path: Path) -> None:
    prompt = f"naked person {ESCAPES}"
    write(tmp_path / "p.txt", prompt + "\n")
    for fmt in ("json", "sarif"):
        result = vgate_main("scan", *RULES, "-f", fmt, str(tmp_path / "p.txt"))
        for raw in ("\x1b", "\x07", "\x9b", "\u202e", "\u2066"):
            assert raw not in result.stdout
        document = json.loads(result.stdout)
        if fmt == "json":
            assert document["results"][0]["text"] == prompt
        else:
            assert prompt in document["runs"][0]["results"][0]["message"]["text"]


# --- eval labels -------------------------------------------------------------------------------


def test_eval_says_safe_cannot_be_combined(vgate_main, tmp_path: Path) -> None:
    data = write(tmp_path / "d.csv", "id,text,label\n1,a cat,safe|pornographic\n")
    result = vgate_main("eval", "--data", str(data), *RULES)
    assert result.code == 2
    (line,) = error_lines(result)
    assert "'safe|pornographic': 'safe' cannot be combined with other labels" in line


# --- line endings: LF and CRLF end a line, a lone CR does not (as in vim, grep -n, wc -l) -----


def lines_and_decisions(vgate_main, path: Path) -> tuple[list[tuple[int, str]], list[str]]:
    result = vgate_main("scan", *RULES, "-f", "json", str(path))
    report = json.loads(result.stdout)
    found = [(item["line"], item["decision"]) for item in report["results"]]
    return found, [str(error["line"]) for error in report["summary"]["errors"]]


def test_lone_cr_does_not_shift_txt_line_numbers(vgate_main, tmp_path: Path) -> None:
    path = write(tmp_path / "p.txt", b"a cat\rnaked person\nsafe dog\r\nnaked again\n")
    found, errors = lines_and_decisions(vgate_main, path)
    assert found == [(1, "block"), (2, "allow"), (3, "block")]  # a 3-line file, as wc -l says
    assert errors == []


def test_lone_cr_does_not_shift_jsonl_line_numbers(vgate_main, tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.jsonl",
        b'{"prompt": "a cat\\rx",\r "n": 1}\n{"prompt": "b"}\r\n{"prompt": "naked person"}\n',
    )
    found, errors = lines_and_decisions(vgate_main, path)
    assert found == [(1, "allow"), (2, "allow"), (3, "block")]
    assert errors == []


def test_lone_cr_does_not_shift_csv_line_numbers(vgate_main, tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.csv", b'prompt,n\r\n"a cat\rnaked",1\r\nnaked person,2\nx\ry,3\nnaked,4\n'
    )
    found, errors = lines_and_decisions(vgate_main, path)
    assert found == [(2, "block"), (3, "block"), (5, "block")]
    assert errors == ["4"]  # a lone CR in an unquoted field is malformed csv, never a new row


# --- SARIF locations of file names that are not UTF-8 -----------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="POSIX file names are bytes")
def test_sarif_uri_of_a_non_utf8_name_names_the_real_file(vgate_main, tmp_path: Path) -> None:
    real = os.fsdecode(b"bad\xff name.txt")
    try:
        write(tmp_path / real, "naked person\n")
        write(tmp_path / os.fsdecode(b"unread\xfe.jsonl"), "not json\n")
    except (UnicodeEncodeError, OSError):
        pytest.skip("this file system refuses names that are not UTF-8")
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        result = vgate_main("scan", *RULES, "-f", "sarif", ".")
    finally:
        os.chdir(old)
    run = json.loads(result.stdout)["runs"][0]
    uri = run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "bad%FF%20name.txt"
    notification = run["invocations"][0]["toolExecutionNotifications"][0]
    location = notification["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert location == "unread%FE.jsonl"
    assert (tmp_path / os.fsdecode(unquote_to_bytes(uri))).is_file()


@pytest.mark.parametrize(
    "content",
    [
        '{"tool": {"name": "vgate"}, "results": [], "results": []}',
        '{"fingerprint": "abc", "hits": [], "hits": []}\n',
    ],
    ids=["json", "jsonl"],
)
def test_duplicate_key_in_a_baseline_is_an_error(vgate_main, tmp_path: Path, content: str) -> None:
    base = write(tmp_path / "b.json", content)
    result = vgate_main("scan", *RULES, "-t", "a cat", "--baseline", str(base))
    assert result.code == 2
    assert error_lines(result) == [
        f"vgate: error: baseline {base}: duplicate key "
        f"'{'results' if 'tool' in content else 'hits'}' in a JSON object"
    ]
