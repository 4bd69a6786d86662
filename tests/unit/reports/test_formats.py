"""The CI report formats: GitHub annotations (against the workflow-command syntax), JUnit XML
(against a JUnit XSD) and GitLab Code Quality (against its schema, stable fingerprints)."""

from __future__ import annotations

import functools
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import annotations, junit_schema, validate_junit
from tests.unit.reports.test_reports import ERRORS, META, SAMPLE, make_verdict, run_report
from vgate.core.findings import BLOCK, WARN, InputIssue, ScanMeta
from vgate.reports import FORMATS, REPORTERS, make_reporter
from vgate.reports.common import hit_message

DATA = Path(__file__).resolve().parents[2] / "data"


def test_every_registered_format_makes_a_reporter() -> None:
    assert set(REPORTERS) == set(FORMATS) >= {"github", "junit", "gitlab"}
    for fmt in FORMATS:
        out = run_report(fmt, SAMPLE, ERRORS)
        assert out.endswith("\n")


# --- GitHub workflow commands -------------------------------------------------------------------


def test_github_annotations_per_finding_and_input_error() -> None:
    parsed = annotations(run_report("github", SAMPLE, ERRORS))
    assert [
        (cmd, props.get("file"), props.get("line"), props["title"]) for cmd, props, _ in parsed
    ] == [
        ("error", "prompts/a.txt", "2", "vgate/pornographic"),
        ("error", "prompts/a.txt", "2", "vgate/violent_bloody"),
        ("warning", "prompts/a.txt", "3", "vgate/terrifying"),
        ("warning", None, None, "vgate/terrifying"),  # stdin: no file to attach to
        ("error", "prompts/broken.csv", "4", "vgate/input-error"),
    ]
    assert "score 0.91 >= threshold 0.50" in parsed[0][2] and "naked man" in parsed[0][2]
    assert parsed[3][2].startswith("<stdin>: ")
    assert parsed[4][2] == "row 4 has 3 columns, expected 2"


def test_github_waived_findings_only_with_show_all() -> None:
    assert "notice" not in run_report("github", SAMPLE)
    notices = [
        a for a in annotations(run_report("github", SAMPLE, show_all=True)) if a[0] == "notice"
    ]
    assert len(notices) == 1 and notices[0][2].endswith("Waived by inline.")


def test_github_escaping_keeps_one_command_per_finding() -> None:
    hostile = make_verdict(
        "x%0A\r\n::error file=fake.txt::forged, 100%: done",
        source="we,ird:name%2C\nfile.txt",
        line=7,
        hits=(("political", 0.7, BLOCK),),
    )
    (parsed,) = annotations(run_report("github", [hostile]))
    command, props, message = parsed
    assert command == "error"
    assert props == {"file": "we,ird:name%2C\nfile.txt", "line": "7", "title": "vgate/political"}
    assert message == hit_message(hostile, hostile.hits[0])
    assert 'Prompt: "x%0A ::error file=fake.txt::forged, 100%: done"' in message


def test_github_control_characters_are_spelled_out() -> None:
    verdict = make_verdict("\x1b]0;owned\x07red\x1b[31m", hits=(("political", 0.7, BLOCK),))
    out = run_report("github", [verdict])
    assert "\x1b" not in out and "\x07" not in out
    (parsed,) = annotations(out)
    assert "\\x1b]0;owned\\x07red\\x1b[31m" in parsed[2]


_SPECIAL = st.sampled_from(",:%=\n\r")
"""The characters the workflow-command syntax escapes (or splits at), drawn often."""
_NAME = st.text(
    _SPECIAL | st.characters(exclude_categories=("Cc", "Cs"), exclude_characters="/"), min_size=1
).filter(lambda name: name not in (".", ".."))


@settings(max_examples=80, deadline=None)
@given(
    text=st.text(_SPECIAL | st.characters(exclude_categories=("Cc", "Cs"))),
    name=_NAME,
    line=st.integers(min_value=0, max_value=10**6),
)
def test_github_any_prompt_and_file_name_round_trip(text: str, name: str, line: int) -> None:
    source = f"d/{name}"
    verdict = make_verdict(
        text, source=source, line=line, hits=(("political", 0.7, BLOCK), ("terrifying", 0.6, WARN))
    )
    parsed = annotations(run_report("github", [verdict]))
    assert [cmd for cmd, _, _ in parsed] == ["error", "warning"]
    for (_, props, message), hit in zip(parsed, verdict.hits, strict=True):
        assert props["title"] == f"vgate/{hit.category}"
        assert props["file"] == source
        assert props.get("line") == (str(line) if line >= 1 else None)
        assert message == hit_message(verdict, hit)


# --- JUnit XML ----------------------------------------------------------------------------------


def suites(root: ET.Element) -> dict[str, ET.Element]:
    return {suite.get("name"): suite for suite in root.iter("testsuite")}


def test_junit_suite_per_file_failure_per_block_error_per_input_error() -> None:
    clean = make_verdict("a dog", source="prompts/clean.txt", line=1)
    root = validate_junit(run_report("junit", [*SAMPLE, clean], ERRORS))
    by_name = suites(root)
    assert list(by_name) == ["prompts/a.txt", "<stdin>", "prompts/clean.txt", "prompts/broken.csv"]
    a = by_name["prompts/a.txt"]
    assert (a.get("tests"), a.get("failures"), a.get("errors")) == ("2", "1", "0")
    properties = {p.get("name"): p.get("value") for p in a.iter("property")}
    assert properties["scanned"] == "4" and properties["blocked"] == "1"
    assert properties["warned"] == "1" and properties["suppressed"] == "1"
    blocked, warned = a.findall("testcase")
    failure = blocked.find("failure")
    assert failure.get("type") == "vgate/pornographic,vgate/violent_bloody"
    assert "0.91" in failure.get("message") and "violent_bloody" in failure.text
    assert blocked.get("name") == "prompts/a.txt:2: pornographic, violent_bloody (block)"
    assert warned.find("failure") is None  # warn does not fail the build with --fail-on block
    assert "prompts/a.txt:3: Terrifying" in a.find("system-out").text
    (whole_file,) = by_name["prompts/clean.txt"].findall("testcase")
    assert whole_file.get("name") == "prompts/clean.txt: 1 prompt, none flagged"
    assert len(whole_file) == 0
    broken = by_name["prompts/broken.csv"]
    assert broken.get("errors") == "1"
    assert broken.find("testcase/error").get("message") == "row 4 has 3 columns, expected 2"


def test_junit_warn_fails_with_fail_on_warn_and_waived_are_skipped() -> None:
    import io

    stream = io.StringIO()
    reporter = make_reporter("junit", stream, show_all=True)
    reporter.start(ScanMeta(**{**META.__dict__, "fail_on": WARN}))
    from vgate.core.findings import ScanSummary

    summary = ScanSummary()
    for verdict in SAMPLE:
        reporter.add(verdict)
        summary.add(verdict)
    reporter.finish(summary)
    a = suites(validate_junit(stream.getvalue()))["prompts/a.txt"]
    assert (a.get("tests"), a.get("failures"), a.get("skipped")) == ("4", "2", "1")
    assert a.find("testcase/skipped").get("message") == "waived by inline"


def test_junit_empty_scan_is_valid() -> None:
    root = validate_junit(run_report("junit", []))
    assert root.tag == "testsuites" and len(root) == 0


def test_junit_schema_rejects_what_jenkins_or_ant_would() -> None:
    """The XSD is not a rubber stamp: attributes or order outside the common subset fail."""
    good = run_report("junit", SAMPLE, ERRORS)
    junit_schema().validate(good)
    broken = [
        good.replace('time="0"/>', 'time="0" file="a.txt"/>', 1),  # unknown testcase attribute
        good.replace(' failures="1"', "", 1),  # required count missing
        good.replace("<system-err></system-err>", "", 1),  # Ant requires system-err
        good.replace('timestamp="2026-11-25T16:24:13"', 'timestamp="yesterday"', 1),
    ]
    for document in broken:
        assert document != good
        assert not junit_schema().is_valid(document)


_ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=300)


@settings(max_examples=60, deadline=None)
@given(text=_ANY_TEXT, source=_ANY_TEXT.filter(bool), message=_ANY_TEXT)
def test_junit_any_text_stays_valid_xml(text: str, source: str, message: str) -> None:
    verdict = make_verdict(text, source=source, line=3, hits=(("political", 0.7, BLOCK),))
    xml = run_report("junit", [verdict], [InputIssue(source, message or "x", 5)])
    xml.encode("utf-8")
    root = validate_junit(xml)
    assert sum(int(s.get("failures")) for s in root.iter("testsuite")) == 1
    assert sum(int(s.get("errors")) for s in root.iter("testsuite")) == 1


def test_junit_keeps_printable_text_exactly_and_spells_out_controls() -> None:
    text = "a <b> & \"c\" 'd' ]]> naked \x1b[2J"
    root = validate_junit(
        run_report("junit", [make_verdict(text, hits=(("pornographic", 0.9, BLOCK),))])
    )
    failure = root.find("testsuite/testcase/failure")
    assert "a <b> & \"c\" 'd' ]]> naked \\x1b[2J" in failure.text


# --- GitLab Code Quality ------------------------------------------------------------------------


@functools.cache
def gitlab_validator() -> jsonschema.Draft7Validator:
    schema = json.loads((DATA / "gitlab-codequality.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema)


def gitlab_report(*args, **kwargs) -> list[dict]:
    issues = json.loads(run_report("gitlab", *args, **kwargs))
    gitlab_validator().validate(issues)
    return issues


def test_gitlab_issues_validate_and_carry_what_gitlab_reads() -> None:
    issues = gitlab_report(SAMPLE, ERRORS)
    got = [
        (i["check_name"], i["severity"], i["location"]["path"], i["location"]["lines"]["begin"])
        for i in issues
    ]
    assert got == [
        ("vgate/pornographic", "critical", "prompts/a.txt", 2),
        ("vgate/violent_bloody", "critical", "prompts/a.txt", 2),
        ("vgate/terrifying", "minor", "prompts/a.txt", 3),
        ("vgate/terrifying", "minor", "<stdin>", 1),
        ("vgate/input-error", "critical", "prompts/broken.csv", 4),
    ]
    assert "0.91" in issues[0]["description"]
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    assert gitlab_report([]) == []


def test_gitlab_schema_is_not_a_rubber_stamp() -> None:
    (issue,) = gitlab_report([SAMPLE[2]])
    for broken in (
        {k: v for k, v in issue.items() if k != "fingerprint"},
        {**issue, "severity": "high"},
        {**issue, "location": {"path": "a.txt", "lines": {"begin": 0}}},
    ):
        assert not gitlab_validator().is_valid([broken])


def test_gitlab_fingerprint_stable_across_runs_line_moves_and_respacing() -> None:
    hits = (("violent_bloody", 0.9, BLOCK),)
    first = gitlab_report([make_verdict("Blood on a knife", line=2, hits=hits)])
    again = gitlab_report([make_verdict("  blood on   a KNIFE!", line=40, hits=hits)])
    assert first[0]["fingerprint"] == again[0]["fingerprint"]
    other_file = gitlab_report([make_verdict("blood on a knife", source="b.txt", hits=hits)])
    other_category = gitlab_report(
        [make_verdict("blood on a knife", line=2, hits=(("terrifying", 0.6, WARN),))]
    )
    assert other_file[0]["fingerprint"] != first[0]["fingerprint"]
    assert other_category[0]["fingerprint"] != first[0]["fingerprint"]


def test_gitlab_repeated_prompt_in_one_file_gets_distinct_fingerprints() -> None:
    hits = (("violent_bloody", 0.9, BLOCK),)
    issues = gitlab_report([make_verdict("gore", line=n, hits=hits) for n in (1, 5, 9)])
    prints = [i["fingerprint"] for i in issues]
    assert len(set(prints)) == 3
    assert prints == [
        i["fingerprint"]
        for i in gitlab_report([make_verdict("gore", line=n, hits=hits) for n in (2, 3, 4)])
    ]


@pytest.mark.parametrize("fmt", ["github", "gitlab"])
def test_paths_are_relative_to_the_working_directory(fmt: str, tmp_path: Path) -> None:
    import io

    stream = io.StringIO()
    reporter = make_reporter(fmt, stream)
    reporter.start(ScanMeta(**{**META.__dict__, "working_directory": str(tmp_path)}))
    reporter.add(
        make_verdict(
            "gore", source=str(tmp_path / "sub" / "p.txt"), hits=(("violent_bloody", 0.9, BLOCK),)
        )
    )
    from vgate.core.findings import ScanSummary

    reporter.finish(ScanSummary())
    assert "sub/p.txt" in stream.getvalue() and str(tmp_path) not in stream.getvalue()
