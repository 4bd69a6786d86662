"""``vgate scan`` and ``vgate policy`` through the real CLI: exit codes, inputs, bad inputs.

Most runs call ``vgate.cli.main()`` in-process (the console script's entry point, with its error
handling); the ``test_console_script_*`` tests run the installed ``vgate`` in a subprocess.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import CliResult, run_vgate, write
from vgate.inputs.prompts import MAX_PROMPT_CHARS
from vgate.policy import load_policy

RULES = ("-d", "rules")


def scan_json(vgate_main, *args: str, stdin: bytes = b"") -> tuple[CliResult, dict[str, Any]]:
    """Run ``vgate scan -d rules -f json ARGS`` and parse the report."""
    result = vgate_main("scan", *RULES, "-f", "json", *args, stdin=stdin)
    assert "Traceback" not in result.stderr
    return result, json.loads(result.stdout)


def flagged(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["location"], r["decision"]) for r in report["results"] if r["decision"] != "allow"]


def error_lines(result: CliResult) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("vgate: error: ")]


def only_error(result: CliResult) -> str:
    """The single ``vgate: error:`` line of a run that failed before scanning."""
    assert result.code == 2, (result.code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vgate: error: "), result.stderr
    return lines[0].removeprefix("vgate: error: ")


# --- exit codes --------------------------------------------------------------------------------


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """One clean, one warn-level (terrifying) and one block-level (violent) prompt."""
    return write(
        tmp_path / "p.txt", "a cat on a skateboard\na zombie in the fog\nblood on a knife\n"
    )


@pytest.mark.parametrize(
    ("content", "fail_on", "code"),
    [
        ("a cat\n", "block", 0),
        ("a cat\n", "warn", 0),
        ("a zombie in the fog\n", "block", 0),
        ("a zombie in the fog\n", "warn", 1),
        ("a zombie in the fog\n", "never", 0),
        ("blood on a knife\n", "block", 1),
        ("blood on a knife\n", "warn", 1),
        ("blood on a knife\n", "never", 0),
    ],
)
def test_exit_code_follows_fail_on(
    vgate_main, tmp_path: Path, content: str, fail_on: str, code: int
) -> None:
    path = write(tmp_path / "p.txt", content)
    result = vgate_main("scan", *RULES, "--fail-on", fail_on, str(path))
    assert result.code == code, result.stderr
    assert "Scanned 1 prompt:" in result.stdout


def test_table_lists_flagged_prompts_with_locations(vgate_main, mixed: Path) -> None:
    result = vgate_main("scan", *RULES, str(mixed))
    assert result.code == 1
    assert f"{mixed}:3" in result.stdout and f"{mixed}:2" in result.stdout
    assert f"{mixed}:1" not in result.stdout
    assert "1 blocked, 1 warned" in result.stdout


def test_json_report_and_summary_line(vgate_main, mixed: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = vgate_main("scan", *RULES, "-f", "json", "-o", str(out), str(mixed))
    assert result.code == 1 and result.stdout == ""
    report = json.loads(out.read_text(encoding="utf-8"))
    assert flagged(report) == [(f"{mixed}:2", "warn"), (f"{mixed}:3", "block")]
    assert report["summary"]["scanned"] == 3
    assert result.stderr.startswith("vgate: scanned 3 prompts: 1 blocked, 1 warned")
    assert vgate_main("scan", *RULES, "-q", "-f", "json", "-o", str(out), str(mixed)).stderr == ""


# --- inputs ------------------------------------------------------------------------------------


def test_stdin_txt_by_default(vgate_main) -> None:
    result, report = scan_json(vgate_main, "-", stdin=b"a cat\n\nnaked man\n")
    assert result.code == 1
    assert flagged(report) == [("<stdin>:3", "block")]


@pytest.mark.parametrize(
    ("fmt", "data", "extra", "lines"),
    [
        ("jsonl", b'{"prompt": "a cat"}\n{"prompt": "naked man"}\n', (), [1, 2]),
        ("csv", b"id,caption\n1,a cat\n2,naked man\n", (), [2, 3]),
        ("csv", b"id,caption,desc\n1,x,a cat\n2,y,naked man\n", ("--column", "desc"), [2, 3]),
        ("jsonl", b'{"desc": "a cat"}\n{"desc": "naked man"}\n', ("--field", "desc"), [1, 2]),
    ],
)
def test_stdin_with_input_format(
    vgate_main, fmt: str, data: bytes, extra: tuple[str, ...], lines: list[int]
) -> None:
    result, report = scan_json(vgate_main, "--input-format", fmt, *extra, "-", stdin=data)
    assert result.code == 1, result.stderr
    got = [(r["location"], r["decision"]) for r in report["results"]]
    assert got == [(f"<stdin>:{lines[0]}", "allow"), (f"<stdin>:{lines[1]}", "block")]


def test_input_format_overrides_the_extension(vgate_main, tmp_path: Path) -> None:
    path = write(tmp_path / "prompts.data", '{"prompt": "gore"}\n')
    _, as_txt = scan_json(vgate_main, "--fail-on", "never", str(path))
    assert as_txt["results"][0]["text"] == '{"prompt": "gore"}'
    _, as_jsonl = scan_json(vgate_main, "--input-format", "jsonl", str(path))
    assert as_jsonl["results"][0]["text"] == "gore"


def test_text_option(vgate_main) -> None:
    result, report = scan_json(vgate_main, "--text", "a cat", "-t", "gore everywhere")
    assert result.code == 1
    assert [(r["location"], r["decision"]) for r in report["results"]] == [
        ("<text>:1", "allow"),
        ("<text>:2", "block"),
    ]
    _, single = scan_json(vgate_main, "--text", "a cat")
    assert single["results"][0]["location"] == "<text>" and single["results"][0]["line"] is None


def test_directory_scan_is_recursive_sorted_and_skips_hidden(vgate_main, tmp_path: Path) -> None:
    root = tmp_path / "prompts"
    write(root / "b.txt", "gore\n")
    write(root / "a" / "x.jsonl", '{"prompt": "gore"}\n')
    write(root / "a" / "w.csv", "prompt\ngore\n")
    write(root / ".cache" / "old.txt", "gore\n")
    write(root / "a" / ".tmp.txt", "gore\n")
    write(root / "readme.md", "gore\n")
    result, report = scan_json(vgate_main, str(root))
    assert result.code == 1
    assert [r["location"] for r in report["results"]] == [
        f"{root}/a/w.csv:2",
        f"{root}/a/x.jsonl:1",
        f"{root}/b.txt:1",
    ]


def test_inline_suppression_is_reported_and_does_not_fail(vgate_main, tmp_path: Path) -> None:
    path = write(tmp_path / "p.txt", "a cat\nblood splatter art  # vgate: allow\n")
    result, report = scan_json(vgate_main, "--fail-on", "warn", str(path))
    assert result.code == 0, result.stderr
    item = report["results"][1]
    assert item["suppressed_by"] == "inline" and item["decision"] == "allow"
    assert item["text"] == "blood splatter art"
    assert [h["category"] for h in item["hits"]] == ["violent_bloody"]
    assert report["summary"]["suppressed"] == 1 and report["summary"]["blocked"] == 0
    table = vgate_main("scan", *RULES, "--all", str(path))
    assert "(inline)" in table.stdout and table.code == 0


def test_allow_list_phrases_and_prompts(vgate_main, tmp_path: Path) -> None:
    path = write(tmp_path / "p.txt", "fresh blood orange juice\na blood moon\nStage Blood, FX!\n")
    result, report = scan_json(vgate_main, str(path))
    assert flagged(report) == [(f"{path}:3", "block")] and result.code == 1
    policy = write(
        tmp_path / "team.yaml",
        "extends: default\nallow:\n  prompts: ['stage blood fx']\n",
    )
    result, report = scan_json(vgate_main, "-p", str(policy), str(path))
    assert result.code == 0, result.stderr
    assert report["results"][2]["suppressed_by"] == "allow-list"
    assert flagged(report) == []  # the parent's allow.phrases still apply


@pytest.mark.parametrize("fmt", ["json", "jsonl", "sarif"])
def test_baseline_reports_only_new_findings(vgate_main, tmp_path: Path, fmt: str) -> None:
    prompts = write(tmp_path / "p.txt", "a cat\nblood on a knife\nnaked man\n")
    base = tmp_path / f"base.{fmt}"
    first = vgate_main("scan", *RULES, "-f", fmt, "-o", str(base), str(prompts))
    assert first.code == 1
    # same findings, moved and re-spaced: nothing new
    write(prompts, "\n\nNaked   MAN\na cat\nblood on a knife!\n")
    result, report = scan_json(vgate_main, "--baseline", str(base), str(prompts))
    assert result.code == 0, result.stderr
    assert {r["suppressed_by"] for r in report["results"] if r["hits"]} == {"baseline"}
    # a new finding fails again, and only it is flagged
    write(prompts, "naked man\nblood on a knife\ngore galore\n")
    result, report = scan_json(vgate_main, "--baseline", str(base), str(prompts))
    assert result.code == 1
    assert flagged(report) == [(f"{prompts}:3", "block")]


def test_bad_baseline_is_a_one_line_error(vgate_main, tmp_path: Path) -> None:
    prompts = write(tmp_path / "p.txt", "a cat\n")
    message = only_error(
        vgate_main("scan", *RULES, "--baseline", str(tmp_path / "no.json"), str(prompts))
    )
    assert "no.json" in message and "not found" in message


# --- bad inputs: the scan goes on, exit 2 -------------------------------------------------------


def test_missing_path_others_still_scanned(vgate_main, tmp_path: Path) -> None:
    good = write(tmp_path / "good.txt", "gore\n")
    missing = tmp_path / "missing.txt"
    result, report = scan_json(vgate_main, str(missing), str(good))
    assert result.code == 2
    assert error_lines(result) == [f"vgate: error: {missing}: no such file or directory"]
    assert flagged(report) == [(f"{good}:1", "block")]
    assert report["summary"]["errors"] == [
        {"source": str(missing), "line": None, "message": "no such file or directory"}
    ]


def test_directory_without_prompt_files(vgate_main, tmp_path: Path) -> None:
    empty_dir = tmp_path / "assets"
    write(empty_dir / "logo.png", b"\x89PNG\r\n")
    result, report = scan_json(vgate_main, str(empty_dir))
    assert result.code == 2 and report["summary"]["scanned"] == 0
    (line,) = error_lines(result)
    assert line.startswith(f"vgate: error: {empty_dir}: directory has no prompt files (.txt")


def test_binary_file(vgate_main, tmp_path: Path) -> None:
    binary = write(tmp_path / "model.txt", bytes(range(256)) * 40)
    good = write(tmp_path / "good.txt", "a cat\n")
    result, report = scan_json(vgate_main, str(binary), str(good))
    assert result.code == 2 and report["summary"]["scanned"] == 1
    (line,) = error_lines(result)
    assert line.startswith(f"vgate: error: {binary}: binary file")


def test_non_utf8_line_is_reported_with_its_number(vgate_main, tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.txt", b"gore one\ncaf\xe9 au lait\nnaked man\n")
    other = write(tmp_path / "other.txt", "blood\n")
    result, report = scan_json(vgate_main, str(bad), str(other))
    assert result.code == 2
    (line,) = error_lines(result)
    assert line.startswith(f"vgate: error: {bad}:2: not valid UTF-8 (byte 0xe9 at column 4)")
    assert flagged(report) == [
        (f"{bad}:1", "block"),
        (f"{bad}:3", "block"),
        (f"{other}:1", "block"),
    ]
    (error,) = report["summary"]["errors"]
    assert (error["source"], error["line"]) == (str(bad), 2)


def test_one_megabyte_line_is_truncated_and_noted(vgate_main, tmp_path: Path) -> None:
    path = write(tmp_path / "big.txt", "a cat\n" + "x" * (1 << 20) + " gore\nnaked\n")
    result, report = scan_json(vgate_main, str(path))
    item = report["results"][1]
    assert item["line"] == 2 and item["input_truncated"] is True
    assert f"input truncated to {MAX_PROMPT_CHARS} characters" in item["notes"]
    assert len(item["text"]) <= 500 and item["text_shortened"]
    assert item["decision"] == "allow"  # "gore" lies past the cut: only the first part is read
    assert report["results"][2]["line"] == 3 and report["results"][2]["decision"] == "block"
    assert result.code == 1


def test_empty_file(vgate_main, tmp_path: Path) -> None:
    empty = write(tmp_path / "empty.txt", b"")
    result, report = scan_json(vgate_main, str(empty))
    assert result.code == 2 and report["summary"]["scanned"] == 0
    assert error_lines(result) == [f"vgate: error: {empty}: empty file"]


def test_csv_without_a_prompt_column_and_column_option(vgate_main, tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", 'id,description\n1,"a cat,\nwith a hat"\n2,gore\n')
    result, report = scan_json(vgate_main, str(path))
    assert result.code == 2 and report["summary"]["scanned"] == 0
    (line,) = error_lines(result)
    assert "no prompt, text or caption column (columns: id, description); use --column" in line
    result, report = scan_json(vgate_main, "--column", "description", str(path))
    assert result.code == 1
    assert [(r["line"], r["decision"]) for r in report["results"]] == [(2, "allow"), (4, "block")]


def test_malformed_jsonl_line_names_the_line(vgate_main, tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.jsonl", '{"prompt": "a cat"}\n{"prompt": gore}\n{"prompt": "gore"}\n'
    )
    result, report = scan_json(vgate_main, str(path))
    assert result.code == 2
    (line,) = error_lines(result)
    assert line.startswith(f"vgate: error: {path}:2: not valid JSON (")
    assert [r["line"] for r in report["results"]] == [1, 3]


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl", "sarif"])
def test_input_errors_appear_in_every_report_format(vgate_main, tmp_path: Path, fmt: str) -> None:
    bad = write(tmp_path / "bad.txt", b"ok\n\xff\n")
    result = vgate_main("scan", *RULES, "-f", fmt, str(bad))
    assert result.code == 2
    if fmt == "table":
        assert f"{bad}:2: not valid UTF-8" in result.stdout
        return
    if fmt == "sarif":
        run = json.loads(result.stdout)["runs"][0]
        (note,) = run["invocations"][0]["toolExecutionNotifications"]
        assert note["locations"][0]["physicalLocation"]["region"]["startLine"] == 2
        return
    text = result.stdout.splitlines()[-1] if fmt == "jsonl" else result.stdout
    (error,) = json.loads(text)["summary"]["errors"]
    assert (error["source"], error["line"]) == (str(bad), 2)


# --- policy and option errors: one line, exit 2, nothing scanned ---------------------------------


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("categories:\n  political: [oops\n", ": not valid YAML (line 3, column 1)"),
        ("categories:\n  political:\n    treshold: 0.5\n", ": categories.political.treshold: "
         "unknown key; expected one of threshold, action, terms, patterns"),
        ("categories:\n  political:\n    terms: nazi\n", ": categories.political.terms: "
         "expected a list of strings, got a string"),
        ("categories:\n  political:\n    patterns: ['(']\n", ": categories.political.patterns[0]: "
         "invalid regular expression"),
        ("categories:\n  political:\n    threshold: 5\n", ": categories.political.threshold: "
         "expected a number from 0 to 1, got 5"),
        ("detectors: [rules, clip]\n", ": detectors[1]: unknown detector 'clip'; expected rules, "
         "model"),
        ("extends: self.yaml\n", ": 'extends' cycle: "),
    ],
    ids=["malformed-yaml", "unknown-key", "wrong-type", "bad-regex", "bad-threshold",
         "unknown-detector", "extends-cycle"],
)  # fmt: skip
def test_policy_errors_stop_the_scan(
    vgate_main, tmp_path: Path, policy: str, expected: str
) -> None:
    path = write(tmp_path / "self.yaml", policy)
    prompts = write(tmp_path / "p.txt", "a cat\n")
    message = only_error(vgate_main("scan", *RULES, "-p", str(path), str(prompts)))
    assert message.startswith(str(path)) and expected in message
    assert only_error(vgate_main("policy", "check", str(path))) == message


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("-d", "vision"), "unknown detector vision; expected rules, model, all"),
        (("-f", "xml"), "--format must be one of table, json, jsonl, sarif, got 'xml'"),
        (("--fail-on", "error"), "--fail-on must be one of block, warn, never, got 'error'"),
        (("--input-format", "tsv"), "--input-format must be one of auto, txt, csv, jsonl"),
        (("-p", "nonexistent"), "unknown policy 'nonexistent'"),
    ],
)
def test_option_errors(vgate_main, tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    prompts = write(tmp_path / "p.txt", "a cat\n")
    assert expected in only_error(vgate_main("scan", *args, str(prompts)))


def test_nothing_to_scan_and_unwritable_output(vgate_main, tmp_path: Path) -> None:
    assert "nothing to scan" in only_error(vgate_main("scan", *RULES))
    prompts = write(tmp_path / "p.txt", "a cat\n")
    message = only_error(vgate_main("scan", *RULES, "-o", str(tmp_path), str(prompts)))
    assert message.startswith(f"{tmp_path}: cannot write report")


# --- vgate policy ------------------------------------------------------------------------------


def test_policy_check_and_list(vgate_main, tmp_path: Path) -> None:
    custom = write(tmp_path / "c.yaml", "extends: strict\ndetectors: [rules]\n")
    result = vgate_main("policy", "check", "default", str(custom))
    assert result.code == 0
    assert result.stdout.splitlines() == [
        "default: ok (rules, model; model builtin:prompt-cascade)",
        f"{custom}: ok (rules; model builtin:prompt-cascade)",
    ]
    listed = vgate_main("policy", "list")
    assert listed.code == 0
    names = [line.split(":", 1)[0] for line in listed.stdout.splitlines() if ": " in line]
    assert names[:3] == ["default", "permissive", "strict"]
    assert load_policy("strict").description.split()[0] in listed.stdout


@pytest.mark.parametrize("name", ["default", "strict", "permissive", "custom"])
def test_policy_show_round_trips(vgate_main, tmp_path: Path, name: str) -> None:
    if name == "custom":
        name = str(
            write(
                tmp_path / "custom.yaml",
                "extends: permissive\ndetectors: [rules]\ncategories:\n  political:\n"
                "    patterns: ['(?i)vote\\s+for']\nallow:\n  prompts: ['A Cat!']\n",
            )
        )
    result = vgate_main("policy", "show", name)
    assert result.code == 0
    assert result.stdout.startswith(f"# resolved policy: {name}\n")
    shown = write(tmp_path / "shown.yaml", result.stdout)
    reloaded, original = load_policy(shown), load_policy(name)
    assert dataclasses.replace(reloaded, name="") == dataclasses.replace(original, name="")
    assert "extends" not in yaml.safe_load(result.stdout)


# --- the console script itself -----------------------------------------------------------------


@pytest.fixture(scope="module")
def script_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("script")
    write(root / "good.txt", "a cat\ngore\n")
    write(root / "bad.txt", b"gore\n\xff\xfe\n")
    write(root / "deep.jsonl", b"[" * 100_000 + b'\n{"prompt": "gore"}\n')
    write(root / "bad.yaml", "categories:\n  gore: {}\n")
    return root


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("scan", "-d", "rules", "-p", "bad.yaml", "good.txt"), "bad.yaml: categories.gore: "),
        (("scan", "-d", "vision", "good.txt"), "unknown detector vision"),
        (("scan", "-d", "rules", "--fail-on", "maybe", "good.txt"), "--fail-on must be one of"),
        (("scan", "-d", "rules", "--baseline", "nope.json", "good.txt"), "nope.json"),
        (("policy", "check", "bad.yaml"), "bad.yaml: categories.gore: unknown key"),
    ],
)
def test_console_script_usage_errors_are_one_line(
    script_inputs: Path, args: tuple[str, ...], expected: str
) -> None:
    result = run_vgate(*args, cwd=script_inputs)
    assert expected in only_error(result)
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("missing.txt", "vgate: error: missing.txt: no such file or directory"),
        ("bad.txt", "vgate: error: bad.txt:2: not valid UTF-8 (byte 0xff at column 1); skipped"),
        ("deep.jsonl", "vgate: error: deep.jsonl:1: not valid JSON (RecursionError"),
    ],
)
def test_console_script_input_errors_scan_the_rest(
    script_inputs: Path, path: str, error: str
) -> None:
    result = run_vgate("scan", "-d", "rules", "-f", "json", path, "good.txt", cwd=script_inputs)
    assert result.code == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith(error) and lines[-1].startswith("vgate: scanned")
    report = json.loads(result.stdout)
    assert "good.txt:2" in [r["location"] for r in report["results"] if r["decision"] == "block"]


def test_console_script_stdin_and_exit_codes(script_inputs: Path) -> None:
    clean = run_vgate("scan", "-d", "rules", "-", stdin=b"a cat\n", cwd=script_inputs)
    assert clean.code == 0 and "Scanned 1 prompt: 0 blocked" in clean.stdout
    dirty = run_vgate("scan", "-d", "rules", "-", stdin=b"a cat\ngore\n", cwd=script_inputs)
    assert dirty.code == 1 and "<stdin>:2" in dirty.stdout
    assert run_vgate("--version").stdout.startswith("vgate ")


def test_end_to_end_with_default_detectors(tmp_path: Path) -> None:
    """The shipped default policy with its default detectors (rules + the embedded model)."""
    prompts = write(tmp_path / "p.txt", "a cat on a skateboard\nblood on a knife\n")
    result = run_vgate("scan", "-f", "json", str(prompts))
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert result.code == 1, result.stderr  # the rules block "blood" whatever the model says
    assert report["meta"]["detectors"] == ["rules", "model"]
    for item in report["results"]:
        assert set(item["detector_scores"]) == {"rules", "model"}
        model = item["detector_scores"]["model"]
        assert set(model) == set(item["scores"]) and all(0.0 <= s <= 1.0 for s in model.values())
        for category, combined in item["scores"].items():  # combined = max over detectors
            expected = max(model[category], item["detector_scores"]["rules"][category])
            assert combined == pytest.approx(expected, abs=1e-4)
    assert report["results"][1]["decision"] == "block"


def test_progress_lines_in_logs_only_when_asked(tmp_path: Path, vgate_main) -> None:
    prompts = write(tmp_path / "p.txt", "".join(f"a cat number {i}\n" for i in range(3000)))
    quiet = vgate_main("scan", *RULES, "-q", "-f", "jsonl", "-o", str(tmp_path / "o"), str(prompts))
    assert quiet.code == 0 and quiet.stderr == ""
    logged = vgate_main(
        "scan", *RULES, "-q", "--progress", "-f", "jsonl", "-o", str(tmp_path / "o"), str(prompts)
    )
    lines = logged.stderr.splitlines()
    assert logged.code == 0 and 1 <= len(lines) <= 10
    assert all(
        line.startswith("vgate: ") and "prompts scanned of ~3,000 lines" in line for line in lines
    )
    assert lines[-1].startswith("vgate: 3,000 prompts scanned")
