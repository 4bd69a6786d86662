"""Report formats: SARIF against the official schema, JSON/JSONL shape, table, caps."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import validate_sarif
from vgate import __version__
from vgate.categories import CATEGORIES, CATEGORY_IDS
from vgate.core.findings import (
    ALLOW,
    BLOCK,
    WARN,
    CategoryHit,
    InputIssue,
    Record,
    ScanMeta,
    ScanSummary,
    Verdict,
    fingerprint,
)
from vgate.errors import VgateError
from vgate.reports import FORMATS, make_reporter
from vgate.reports.sarif import FINGERPRINT_KEY, MAX_RESULTS, SarifReporter, artifact_uri


def make_verdict(
    text: str,
    source: str = "prompts/a.txt",
    line: int = 1,
    hits: tuple[tuple[str, float, str], ...] = (),
    *,
    suppressed_by: str | None = None,
    notes: tuple[str, ...] = (),
) -> Verdict:
    """A verdict as the scan would build it; ``hits`` are (category, score, action)."""
    scores = np.full(5, 0.05, dtype=np.float32)
    for category, score, _ in hits:
        scores[CATEGORY_IDS.index(category)] = score
    decision = ALLOW
    if not suppressed_by:
        actions = {action for _, _, action in hits}
        decision = BLOCK if BLOCK in actions else WARN if WARN in actions else ALLOW
    return Verdict(
        record=Record(text=text, source=source, line=line),
        scores=scores,
        detector_scores={"rules": np.zeros(5, dtype=np.float32), "model": scores.copy()},
        decision=decision,
        hits=[CategoryHit(c, s, 0.5, a) for c, s, a in hits],
        reasons=[f"{c}: score {s:.2f}" for c, s, _ in hits],
        notes=list(notes),
        suppressed_by=suppressed_by,
    )


META = ScanMeta(
    policy="default",
    detectors=["rules", "model"],
    command_line=["vgate", "scan", "prompts", "--format", "sarif"],
    start_time_utc="2026-11-25T16:24:13Z",
)


def run_report(
    fmt: str, verdicts: list[Verdict], errors: list[InputIssue] = (), **kwargs: object
) -> str:
    """Feed verdicts through a reporter the way the scan does; return what it wrote."""
    stream = io.StringIO()
    reporter = make_reporter(fmt, stream, **kwargs)
    summary = ScanSummary(seconds=0.5)
    reporter.start(META)
    for verdict in verdicts:
        reporter.add(verdict)
        summary.add(verdict)
    summary.errors.extend(errors)
    reporter.finish(summary)
    return stream.getvalue()


SAMPLE = [
    make_verdict("a cat sleeping on a sofa", line=1),
    make_verdict(
        "a naked man covered in blood",
        line=2,
        hits=(("pornographic", 0.91, BLOCK), ("violent_bloody", 0.77, BLOCK)),
    ),
    make_verdict("a zombie in a dark forest", line=3, hits=(("terrifying", 0.66, WARN),)),
    make_verdict("stdin says demon", source="<stdin>", line=0, hits=(("terrifying", 0.6, WARN),)),
    make_verdict(
        "a nude statue", line=5, hits=(("pornographic", 0.8, BLOCK),), suppressed_by="inline"
    ),
]
ERRORS = [InputIssue("prompts/broken.csv", "row 4 has 3 columns, expected 2", 4)]


def test_formats_and_unknown_format() -> None:
    assert FORMATS == ("table", "json", "jsonl", "sarif", "github", "junit", "gitlab")
    with pytest.raises(VgateError, match="unknown report format"):
        make_reporter("xml", io.StringIO())


# --- SARIF -------------------------------------------------------------------------------------


def test_sarif_validation_checks_uri_formats() -> None:
    """The schema's ``format: uri`` / ``uri-reference`` are enforced (jsonschema[format-nongpl]
    in the dev extra): without a format checker a bad URI would validate silently."""
    assert {"uri", "uri-reference"} <= set(jsonschema.FormatChecker().checkers)
    log = json.loads(run_report("sarif", SAMPLE, ERRORS))
    validate_sarif(log)
    bad_tool = copy.deepcopy(log)
    bad_tool["runs"][0]["tool"]["driver"]["informationUri"] = "not a uri"
    with pytest.raises(jsonschema.ValidationError, match="is not a 'uri'"):
        validate_sarif(bad_tool)
    bad_artifact = copy.deepcopy(log)
    location = bad_artifact["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    location["artifactLocation"]["uri"] = "prompts/a file with spaces.txt"
    with pytest.raises(jsonschema.ValidationError, match="is not a 'uri-reference'"):
        validate_sarif(bad_artifact)


def test_sarif_validates_and_has_rules_levels_regions() -> None:
    log = json.loads(run_report("sarif", SAMPLE, ERRORS))
    validate_sarif(log)
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "vgate"
    assert driver["version"] == __version__
    assert driver["informationUri"].startswith("https://")
    rules = driver["rules"]
    assert [r["id"] for r in rules] == [f"vgate/{c.id}" for c in CATEGORIES]
    for r in rules:
        assert r["help"]["text"] and r["help"]["markdown"]
        assert r["defaultConfiguration"]["level"] in ("error", "warning")
        assert 0 < float(r["properties"]["security-severity"]) <= 10
        assert len(r["properties"]["tags"]) <= 10

    results = run["results"]
    got = [(r["ruleId"], r["level"]) for r in results]
    assert got == [
        ("vgate/pornographic", "error"),
        ("vgate/violent_bloody", "error"),
        ("vgate/terrifying", "warning"),
        ("vgate/terrifying", "warning"),
    ]
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert len(result["partialFingerprints"][FINGERPRINT_KEY]) == 32
        assert set(result["properties"]["scores"]) == set(CATEGORY_IDS)
    loc = results[0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "prompts/a.txt", "uriBaseId": "%SRCROOT%"}
    assert loc["region"] == {"startLine": 2}
    assert results[0]["partialFingerprints"][FINGERPRINT_KEY] == fingerprint(SAMPLE[1].record.text)
    assert "0.91" in results[0]["message"]["text"]
    stdin_loc = results[3]["locations"][0]["physicalLocation"]
    assert stdin_loc["artifactLocation"]["uri"] == "%3Cstdin%3E"
    assert "region" not in stdin_loc

    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is True
    assert invocation["commandLine"] == "vgate scan prompts --format sarif"
    assert invocation["startTimeUtc"] == META.start_time_utc
    assert invocation["endTimeUtc"].endswith("Z")
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and "row 4" in note["message"]["text"]
    assert note["locations"][0]["physicalLocation"]["region"] == {"startLine": 4}
    assert run["properties"]["summary"]["blocked"] == 1
    assert run["properties"]["resultsCapped"] is False


def test_sarif_suppressed_only_with_show_all() -> None:
    log = json.loads(run_report("sarif", SAMPLE, show_all=True))
    validate_sarif(log)
    suppressed = [r for r in log["runs"][0]["results"] if "suppressions" in r]
    assert len(suppressed) == 1
    assert suppressed[0]["suppressions"][0]["kind"] == "inSource"


def test_sarif_empty_run_validates() -> None:
    log = json.loads(run_report("sarif", []))
    validate_sarif(log)
    assert log["runs"][0]["results"] == []


def test_fingerprint_survives_line_moves_and_respacing() -> None:
    text = "A naked man covered in blood"
    hits = (("pornographic", 0.9, BLOCK),)
    moved = [
        make_verdict(text, line=2, hits=hits),
        make_verdict(text, line=40, hits=hits),
        make_verdict("  a NAKED man,   covered in blood! ", source="other.txt", line=7, hits=hits),
    ]
    log = json.loads(run_report("sarif", moved))
    prints = {r["partialFingerprints"][FINGERPRINT_KEY] for r in log["runs"][0]["results"]}
    assert len(prints) == 1


@pytest.mark.parametrize(
    ("source", "uri", "base"),
    [
        ("prompts/a.txt", "prompts/a.txt", "%SRCROOT%"),
        ("./prompts/../prompts/a b.txt", "prompts/a%20b.txt", "%SRCROOT%"),
        ("<stdin>", "%3Cstdin%3E", "%SRCROOT%"),
        ("-", "%3Cstdin%3E", "%SRCROOT%"),
        ("<text>", "%3Ctext%3E", "%SRCROOT%"),
    ],
)
def test_artifact_uri(source: str, uri: str, base: str) -> None:
    assert artifact_uri(source) == (uri, base)


def test_artifact_uri_absolute_inside_and_outside(tmp_path: Path) -> None:
    inside = tmp_path / "sub" / "p.txt"
    assert artifact_uri(str(inside), str(tmp_path)) == ("sub/p.txt", "%SRCROOT%")
    outside = tmp_path.parent / "elsewhere.txt"
    uri, base = artifact_uri(str(outside), str(tmp_path))
    assert uri.startswith("file:///") and base is None


def test_sarif_caps_results_keeping_errors_first() -> None:
    stream = io.StringIO()
    reporter = SarifReporter(stream, max_results=5)
    reporter.start(META)
    summary = ScanSummary()
    verdicts = [
        make_verdict(f"zombie {i}", line=i + 1, hits=(("terrifying", 0.6, WARN),)) for i in range(6)
    ]
    verdicts += [
        make_verdict(f"gore {i}", line=i + 10, hits=(("violent_bloody", 0.9, BLOCK),))
        for i in range(3)
    ]
    for verdict in verdicts:
        reporter.add(verdict)
        summary.add(verdict)
    reporter.finish(summary)
    log = json.loads(stream.getvalue())
    validate_sarif(log)
    run = log["runs"][0]
    levels = [r["level"] for r in run["results"]]
    assert levels.count("error") == 3 and levels.count("warning") == 2
    # Kept results stay in input order.
    lines = [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in run["results"]]
    assert lines == [1, 2, 10, 11, 12]
    assert run["properties"]["resultsCapped"] is True
    assert run["properties"]["resultsOmitted"] == 4
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert any("at most 5 results" in n["message"]["text"] for n in notes)


def test_sarif_default_cap_is_github_limit() -> None:
    assert MAX_RESULTS == 25_000
    stream = io.StringIO()
    reporter = SarifReporter(stream)
    reporter.start(META)
    verdict = make_verdict("gore", hits=(("violent_bloody", 0.9, BLOCK),))
    for _ in range(MAX_RESULTS + 10):
        reporter.add(verdict)
    reporter.finish(ScanSummary())
    run = json.loads(stream.getvalue())["runs"][0]
    assert len(run["results"]) == MAX_RESULTS
    assert run["properties"]["resultsOmitted"] == 10


# --- JSON / JSONL ------------------------------------------------------------------------------


def test_json_contains_every_prompt_with_five_scores() -> None:
    long_text = "blood " * 200
    verdicts = [*SAMPLE, make_verdict(long_text, line=9, notes=("language: de",))]
    doc = json.loads(run_report("json", verdicts, ERRORS))
    assert doc["tool"] == {"name": "vgate", "version": __version__}
    assert doc["meta"]["policy"] == "default"
    items = doc["results"]
    assert len(items) == len(verdicts)
    for item, verdict in zip(items, verdicts, strict=True):
        assert list(item["scores"]) == list(CATEGORY_IDS)
        assert set(item["detector_scores"]) == {"rules", "model"}
        assert item["fingerprint"] == verdict.fingerprint
        assert item["decision"] == verdict.decision
        assert item["location"].startswith(verdict.record.source)
    assert items[1]["hits"][0] == {
        "category": "pornographic",
        "score": pytest.approx(0.91),
        "threshold": 0.5,
        "action": "block",
    }
    assert items[4]["suppressed_by"] == "inline"
    assert items[-1]["text_shortened"] is True and len(items[-1]["text"]) <= 500
    assert items[-1]["language"] == "de"
    assert items[0]["language"] is None
    summary = doc["summary"]
    assert (summary["scanned"], summary["blocked"], summary["warned"], summary["suppressed"]) == (
        6,
        1,
        2,
        1,
    )
    assert summary["per_category"]["terrifying"] == 2
    assert summary["errors"] == [
        {"source": "prompts/broken.csv", "line": 4, "message": "row 4 has 3 columns, expected 2"}
    ]


def test_json_empty_scan_is_valid() -> None:
    doc = json.loads(run_report("json", []))
    assert doc["results"] == [] and doc["summary"]["scanned"] == 0


def test_jsonl_lines_parse_and_summary_is_last() -> None:
    out = run_report("jsonl", SAMPLE, ERRORS)
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == len(SAMPLE) + 1
    assert all("fingerprint" in item for item in lines[:-1])
    assert lines[-1]["summary"]["scanned"] == len(SAMPLE)
    assert lines[-1]["summary"]["errors"][0]["line"] == 4
    assert lines[-1]["tool"]["name"] == "vgate"
    # Same item shape as the JSON report.
    assert lines[:-1] == json.loads(run_report("json", SAMPLE))["results"]


# Lone surrogates included: the input readers reject them, but a report must never crash.
_TEXT = st.text(st.characters(exclude_categories=()), max_size=600)


@settings(max_examples=60, deadline=None)
@given(
    text=_TEXT,
    line=st.integers(min_value=0, max_value=10**6),
    source=st.sampled_from(["prompts/a.txt", "dir with space/ü.txt", "<stdin>", "-", "x\udcff"]),
)
def test_any_text_keeps_reports_valid(text: str, line: int, source: str) -> None:
    verdicts = [make_verdict(text, source=source, line=line, hits=(("political", 0.7, BLOCK),))]
    outputs = {fmt: run_report(fmt, verdicts) for fmt in FORMATS}
    for out in outputs.values():
        out.encode("utf-8")  # writable to a UTF-8 file
    doc = json.loads(outputs["json"])
    assert doc["results"][0]["fingerprint"] == verdicts[0].fingerprint
    assert doc["results"][0]["text"] == text or doc["results"][0]["text_shortened"]
    lines = outputs["jsonl"].splitlines()
    assert len(lines) == 2 and json.loads(lines[0]) == doc["results"][0]
    assert "summary" in json.loads(lines[-1])
    log = json.loads(outputs["sarif"])
    validate_sarif(log)
    (result,) = log["runs"][0]["results"]
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri and not set(uri) & set(' <>\\"')
    assert "BLOCK" in outputs["table"]


# Words whose upper case folds back to the same letters (not so for e.g. Turkish dotless "ı").
_WORD = st.text(st.characters(categories=("L", "N")), min_size=1).filter(
    lambda w: w.upper().casefold() == w.casefold()
)


@settings(max_examples=60, deadline=None)
@given(words=st.lists(_WORD, min_size=1, max_size=8))
def test_fingerprint_invariant_under_whitespace_and_case(words: list[str]) -> None:
    plain = " ".join(words)
    respaced = "\n  " + "   \t".join(w.upper() for w in words) + " !"
    assert fingerprint(plain) == fingerprint(respaced)
    verdicts = [
        make_verdict(t, line=n, hits=(("political", 0.7, BLOCK),))
        for n, t in ((1, plain), (99, respaced))
    ]
    log = json.loads(run_report("sarif", verdicts))
    prints = {r["partialFingerprints"][FINGERPRINT_KEY] for r in log["runs"][0]["results"]}
    assert len(prints) == 1


def test_fingerprint_folds_case_and_compatibility_forms() -> None:
    assert fingerprint("STRASSE voll Blut") == fingerprint("straße voll blut")
    assert fingerprint("ｎａｋｅｄ") == fingerprint("naked")  # fullwidth forms (NFKC)


# --- table -------------------------------------------------------------------------------------


def test_table_shows_flagged_rows_errors_and_summary() -> None:
    long_prompt = "a zombie " + "walking slowly " * 30
    verdicts = [*SAMPLE, make_verdict(long_prompt, line=8, hits=(("terrifying", 0.7, WARN),))]
    out = run_report("table", verdicts, ERRORS)
    assert "\x1b[" not in out  # not a terminal: no colour codes
    assert "prompts/a.txt:2" in out and "BLOCK" in out and "pornographic 0.91" in out
    assert "prompts/a.txt:3" in out and "WARN" in out
    assert "prompts/a.txt:1 " not in out  # allowed prompts are not listed
    assert "a cat sleeping" not in out
    assert "walking slowly " * 10 not in out  # long prompts are shortened
    assert "prompts/broken.csv:4: row 4 has 3 columns" in out
    assert "Scanned 6 prompts: 1 blocked, 3 warned, 1 suppressed, 1 error in 0.50 s" in out


def test_table_show_all_lists_allowed_and_suppressed() -> None:
    out = run_report("table", SAMPLE, show_all=True)
    assert "a cat sleeping" in out
    assert "allow (inline)" in out


def test_table_rich_markup_in_prompts_is_printed_literally() -> None:
    out = run_report(
        "table", [make_verdict("[bold red]gore[/]", hits=(("violent_bloody", 0.9, BLOCK),))]
    )
    assert "[bold red]gore[/]" in out


# --- streaming ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_formats_write_each_item_as_it_comes(fmt: str) -> None:
    stream = io.StringIO()
    reporter = make_reporter(fmt, stream)
    reporter.start(META)
    sizes = []
    for verdict in SAMPLE:
        reporter.add(verdict)
        sizes.append(len(stream.getvalue()))
    assert sizes == sorted(set(sizes))  # grew after every item
    assert SAMPLE[-1].fingerprint in stream.getvalue()


@pytest.mark.parametrize("fmt", ["table", "sarif"])
def test_table_and_sarif_keep_nothing_for_allowed_prompts(fmt: str) -> None:
    reporter = make_reporter(fmt, io.StringIO())
    reporter.start(META)
    allowed = make_verdict("a cat")
    for _ in range(10_000):
        reporter.add(allowed)
    kept = reporter._rows if fmt == "table" else reporter._kept["error"] + reporter._kept["warning"]
    assert kept == []
