"""Baselines: round-trips through each report format, and clear errors for bad files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from vgate.categories import CATEGORY_IDS
from vgate.core.baseline import load_baseline
from vgate.core.findings import BLOCK, WARN, CategoryHit, Record, ScanMeta, ScanSummary, Verdict
from vgate.errors import InputError
from vgate.reports import make_reporter

META = ScanMeta("default", ["rules"], ["vgate", "scan", "."], "2026-11-25T16:24:13Z")


def verdict(text: str, line: int, hits: list[tuple[str, str]], suppressed_by: str | None = None):
    """A verdict with ``hits`` as (category, action) pairs."""
    actions = {a for _, a in hits}
    decision = "allow" if suppressed_by or not hits else BLOCK if BLOCK in actions else WARN
    return Verdict(
        record=Record(text, "prompts/p.txt", line),
        scores=np.full(len(CATEGORY_IDS), 0.9, dtype=np.float32),
        detector_scores={},
        decision=decision,
        hits=[CategoryHit(c, 0.9, 0.5, a) for c, a in hits],
        suppressed_by=suppressed_by,
    )


VERDICTS = [
    verdict("a sunny beach", 1, []),
    verdict("a naked zombie", 2, [("pornographic", BLOCK), ("terrifying", WARN)]),
    verdict("a bloody fight", 3, [("violent_bloody", BLOCK)]),
    verdict("an old swastika flag", 4, [("political", BLOCK)], suppressed_by="baseline"),
]
FLAGGED = {
    ("pornographic", VERDICTS[1].fingerprint),
    ("terrifying", VERDICTS[1].fingerprint),
    ("violent_bloody", VERDICTS[2].fingerprint),
}
WAIVED = {("political", VERDICTS[3].fingerprint)}


def write_report(fmt: str, path: Path, *, show_all: bool = False) -> Path:
    stream = io.StringIO()
    reporter = make_reporter(fmt, stream, show_all=show_all)
    reporter.start(META)
    summary = ScanSummary()
    for v in VERDICTS:
        reporter.add(v)
        summary.add(v)
    reporter.finish(summary)
    path.write_text(stream.getvalue(), encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_round_trip_json_formats_keep_waived_pairs(tmp_path: Path, fmt: str) -> None:
    # A report made with a baseline still carries the waived pairs, so re-baselining keeps them.
    assert load_baseline(write_report(fmt, tmp_path / f"r.{fmt}")) == FLAGGED | WAIVED


def test_round_trip_sarif(tmp_path: Path) -> None:
    assert load_baseline(write_report("sarif", tmp_path / "r.sarif")) == FLAGGED
    assert load_baseline(write_report("sarif", tmp_path / "a.sarif", show_all=True)) == (
        FLAGGED | WAIVED
    )


def test_format_is_detected_from_content_not_name(tmp_path: Path) -> None:
    sarif = write_report("sarif", tmp_path / "report.json")
    jsonl = write_report("jsonl", tmp_path / "report.sarif")
    assert load_baseline(sarif) == FLAGGED
    assert load_baseline(jsonl) == FLAGGED | WAIVED


def test_pretty_printed_and_empty_reports(tmp_path: Path) -> None:
    doc = json.loads(write_report("json", tmp_path / "r.json").read_text(encoding="utf-8"))
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    assert load_baseline(pretty) == FLAGGED | WAIVED
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"summary": {"scanned": 0}, "tool": {"name": "vgate"}}) + "\n")
    assert load_baseline(empty) == set()


def test_same_prompt_moved_is_still_baselined(tmp_path: Path) -> None:
    pairs = load_baseline(write_report("sarif", tmp_path / "r.sarif"))
    moved = verdict("  A NAKED   zombie! ", 200, [("pornographic", BLOCK)])
    assert {(h.category, moved.fingerprint) for h in moved.hits} <= pairs


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file not found"),
        ("", "not valid JSON"),
        ("this is not json", "not valid JSON"),
        ('{"results": [', "not valid JSON"),
        ("[1, 2, 3]", "not a vgate report"),
        ('{"tool": {"name": "other"}, "results": []}', "not a vgate report"),
        (
            '{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "eslint"}}}]}',
            "no vgate run",
        ),
        ('{"fingerprint": "abc", "hits": []}\nnot json\n', "line 2 is not valid JSON"),
        ('{"fingerprint": "abc", "hits": []}\n{"other": 1}\n', "line 2 is not a vgate jsonl"),
        ('{"tool": {"name": "vgate"}, "results": {"a": 1}}', "without a 'results' list"),
    ],
)
def test_bad_baseline_files_raise_input_error(tmp_path: Path, content: str | None, message: str):
    path = tmp_path / "base.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message) as info:
        load_baseline(path)
    text = str(info.value)
    assert str(path) in text and "\n" not in text


def test_directory_and_binary_files_raise_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="directory"):
        load_baseline(tmp_path)
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="UTF-8"):
        load_baseline(binary)
