"""Gate (policy + detectors), the streaming scan loop, exit codes, and fingerprints."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import write
from vgate.categories import CATEGORY_IDS
from vgate.core.findings import (
    ALLOW,
    BLOCK,
    WARN,
    InputIssue,
    Record,
    ScanMeta,
    ScanSummary,
    Verdict,
    fingerprint,
    normalize_text,
)
from vgate.core.gate import NON_ENGLISH_NOTE, Gate, mostly_non_ascii, parse_detectors
from vgate.core.runner import exit_code, run_scan
from vgate.errors import VgateError
from vgate.inputs.prompts import make_record
from vgate.policy import LONG_PROMPT_CHARS


@pytest.fixture(scope="module")
def gate() -> Gate:
    return Gate("default", detectors="rules")


class ListReporter:
    """Collects what a scan reports, checking the start/add/finish protocol."""

    def __init__(self) -> None:
        self.started = False
        self.verdicts: list[Verdict] = []
        self.summary: ScanSummary | None = None

    def start(self, meta: ScanMeta) -> None:
        self.started = True

    def add(self, verdict: Verdict) -> None:
        assert self.started and self.summary is None
        self.verdicts.append(verdict)

    def finish(self, summary: ScanSummary) -> None:
        self.summary = summary


# --- detectors option --------------------------------------------------------------------------


def test_parse_detectors() -> None:
    assert parse_detectors(None) is None
    assert parse_detectors("rules") == ("rules",)
    assert parse_detectors(" model , rules,model") == ("model", "rules")
    assert parse_detectors("all") == ("rules", "model")
    assert parse_detectors(["rules"]) == ("rules",)
    for bad in ("vision", "rules,vision", "", []):
        with pytest.raises(VgateError, match="unknown detector") as info:
            parse_detectors(bad)
        assert "expected rules, model, all" in str(info.value)


def test_gate_uses_the_policy_detectors_unless_told(tmp_path: Path) -> None:
    policy = write(tmp_path / "p.yaml", "detectors: [rules]\n")
    assert Gate(policy).detector_names == ("rules",)
    assert Gate("default").detector_names == ("rules", "model")
    assert Gate("default", detectors="rules").detector_names == ("rules",)
    assert Gate("default", model="some/dir").model_ref == "some/dir"
    assert Gate("default").model_ref == "builtin:prompt-v2"


# --- scoring and verdicts ----------------------------------------------------------------------


def test_scores_shape_and_combination(gate: Gate) -> None:
    scores = gate.scores(["a cat", "blood and a naked zombie"])
    assert scores.dtype == np.float32 and scores.shape == (2, len(CATEGORY_IDS))
    assert not scores[0].any()
    hit = {c for c, s in zip(CATEGORY_IDS, scores[1], strict=True) if s}
    assert hit == {"violent_bloody", "pornographic", "terrifying"}


class ConstantDetector:
    def __init__(self, name: str, values: list[float]) -> None:
        self.name = name
        self.values = np.array(values, dtype=np.float32)

    def detect(self, texts):
        from vgate.detectors.base import Detection

        scores = np.tile(self.values, (len(texts), 1))
        return Detection(scores=scores, notes={0: [f"{self.name} note"]})


def test_combined_score_is_the_maximum_over_detectors() -> None:
    gate = Gate("default", detectors="rules")
    gate._detectors = [
        ConstantDetector("a", [0.9, 0.1, 0.0, 0.2, 0.0]),
        ConstantDetector("b", [0.3, 0.6, 0.0, 0.1, 0.4]),
    ]
    combined, _ = gate.detect(["x", "y"])
    np.testing.assert_allclose(combined[1], [0.9, 0.6, 0.0, 0.2, 0.4])
    (first, second) = gate.judge([make_record("x", "s", 1), make_record("y", "s", 2)])
    assert first.notes == ["a note", "b note"] and second.notes == []
    assert set(first.detector_scores) == {"a", "b"}
    # distorted_weird 0.9 and terrifying 0.6 warn in the default policy; nothing blocks
    assert first.decision == WARN
    assert [h.category for h in first.hits] == ["distorted_weird", "terrifying"]


def test_long_prompt_is_judged_whole_and_language_is_noted(gate: Gate) -> None:
    long = make_record("a cat on a mat. " * (LONG_PROMPT_CHARS // 8) + "Then gore.", "f.txt", 3)
    verdicts = gate.judge([long, make_record("кровь и насилие", "f.txt", 4)])
    assert verdicts[0].decision == BLOCK  # the term sits past the old 20,000-character cut
    assert "matched 'gore'" in verdicts[0].reasons[0]
    assert verdicts[1].notes == [NON_ENGLISH_NOTE]
    assert verdicts[0].record.line == 3 and verdicts[1].record.line == 4


def test_mostly_non_ascii() -> None:
    assert mostly_non_ascii("кровь")
    assert not mostly_non_ascii("a café")
    assert not mostly_non_ascii("1234 !!")


def test_scan_api_numbers_texts_from_one(gate: Gate) -> None:
    verdicts = gate.scan(["a cat", "gore"])
    assert [(v.record.source, v.record.line) for v in verdicts] == [("<api>", 1), ("<api>", 2)]
    assert [v.decision for v in verdicts] == [ALLOW, BLOCK]
    assert "violent_bloody 1.00 >= 0.50 (rules 1.00; matched 'gore')" in verdicts[1].reasons


def test_gate_pickles_without_loaded_detectors(gate: Gate) -> None:
    gate.scores(["warm"])
    clone = pickle.loads(pickle.dumps(gate))
    assert clone._detectors is None
    np.testing.assert_array_equal(clone.scores(["blood"]), gate.scores(["blood"]))


# --- the scan loop -----------------------------------------------------------------------------


def _items(n: int):
    for i in range(1, n + 1):
        if i % 7 == 0:
            yield InputIssue("f.txt", "bad line", i)
        else:
            yield make_record("blood" if i % 5 == 0 else f"cat {i}", "f.txt", i)


@pytest.mark.parametrize("batch_size", [1, 3, 256])
def test_run_scan_reports_every_record_in_order_and_collects_issues(
    gate: Gate, batch_size: int
) -> None:
    reporter = ListReporter()
    reporter.start(ScanMeta("default", ["rules"], ["vgate"], "2026-01-01T00:00:00Z"))
    seen_issues: list[InputIssue] = []
    progress: list[int] = []
    summary = run_scan(
        _items(40),
        gate,
        reporter,
        on_issue=seen_issues.append,
        on_progress=progress.append,
        batch_size=batch_size,
    )
    lines = [v.record.line for v in reporter.verdicts]
    assert lines == [i for i in range(1, 41) if i % 7]
    assert reporter.summary is summary
    assert summary.scanned == len(lines) == sum(progress)
    assert summary.blocked == len([i for i in lines if i % 5 == 0])
    assert [e.line for e in summary.errors] == [7, 14, 21, 28, 35] == [e.line for e in seen_issues]
    assert summary.per_category == {"violent_bloody": summary.blocked}
    assert summary.seconds >= 0


def test_run_scan_is_lazy(gate: Gate) -> None:
    """Records are pulled batch by batch, not read up front."""
    pulled = 0

    def items():
        nonlocal pulled
        for i in range(1, 10_000):
            pulled += 1
            yield make_record("cat", "f", i)

    class Abort(Exception):
        pass

    class AbortAfterThree(ListReporter):
        def add(self, verdict: Verdict) -> None:
            super().add(verdict)
            if len(self.verdicts) == 3:
                raise Abort

    reporter = AbortAfterThree()
    reporter.start(ScanMeta("default", ["rules"], ["vgate"], "2026-01-01T00:00:00Z"))
    with pytest.raises(Abort):
        run_scan(items(), gate, reporter, batch_size=10)
    assert pulled == 10


def _summary(blocked: int = 0, warned: int = 0, errors: int = 0) -> ScanSummary:
    summary = ScanSummary(blocked=blocked, warned=warned)
    for _ in range(errors):
        summary.add_error(InputIssue("f", "x"))
    return summary


@pytest.mark.parametrize(
    ("summary", "fail_on", "code"),
    [
        (_summary(), BLOCK, 0),
        (_summary(blocked=1), BLOCK, 1),
        (_summary(warned=1), BLOCK, 0),
        (_summary(warned=1), WARN, 1),
        (_summary(blocked=1), WARN, 1),
        (_summary(blocked=1, warned=1), "never", 0),
        (_summary(errors=1), "never", 2),
        (_summary(blocked=1, errors=1), BLOCK, 2),
    ],
)
def test_exit_code(summary: ScanSummary, fail_on: str, code: int) -> None:
    assert exit_code(summary, fail_on) == code


def test_the_baseline_waives_only_fully_known_verdicts() -> None:
    text = "blood and nudity"
    fp = fingerprint(text)
    known = {("violent_bloody", fp), ("pornographic", fp)}
    (both,) = Gate("default", detectors="rules", baseline=known).scan([text])
    assert both.decision == ALLOW and both.suppressed_by == "baseline"
    assert both.reasons[-1] == "waived by baseline" and len(both.hits) == 2
    (partial,) = Gate("default", detectors="rules", baseline={known.pop()}).scan([text])
    assert partial.decision == BLOCK and partial.suppressed_by is None
    assert "waived by baseline" not in partial.reasons
    known = {("violent_bloody", fp), ("pornographic", fp)}
    gate = Gate("default", detectors="rules", baseline=known)
    (other,) = gate.scan(["blood and nudity again"])
    assert other.decision == BLOCK


def test_an_inline_waiver_wins_over_the_baseline() -> None:
    fp = fingerprint("gore")
    gate = Gate("default", detectors="rules", baseline={("violent_bloody", fp)})
    (verdict,) = gate.judge([make_record("gore", "f", 1, suppressed=True)])
    assert verdict.suppressed_by == "inline" and verdict.reasons[-1] == "waived by inline"


def test_extra_notes_follow_the_gate_notes() -> None:
    gate = Gate("default", detectors="rules")
    russian = make_record("кровь и насилие", "f", 1)
    first, second = gate.judge([russian, make_record("cat", "f", 2)], {0: ["from the reader"]})
    assert first.notes == [NON_ENGLISH_NOTE, "from the reader"]
    assert second.notes == []


def test_run_scan_needs_a_video_scanner_for_videos(gate: Gate, tmp_path: Path) -> None:
    from vgate.inputs.video import VideoItem

    reporter = ListReporter()
    reporter.start(ScanMeta("default", ["rules"], ["vgate"], "2026-01-01T00:00:00Z"))
    with pytest.raises(ValueError, match=r"clip\.mp4 is a video"):
        run_scan([VideoItem("clip.mp4", tmp_path / "clip.mp4")], gate, reporter)


def test_summary_counts_suppressed_but_not_their_categories() -> None:
    summary = ScanSummary()
    gate = Gate("default", detectors="rules")
    verdicts = gate.judge(
        [make_record("gore", "f", 1, suppressed=True), make_record("gore", "f", 2)]
    )
    for v in verdicts:
        summary.add(v)
    assert (summary.scanned, summary.blocked, summary.suppressed) == (2, 1, 1)
    assert summary.per_category == {"violent_bloody": 1}


# --- normalize_text and fingerprint ------------------------------------------------------------

# Letters, digits and marks from many scripts; the Turkish dotless i is the one letter whose
# upper case ("I") case-folds to a different letter ("i"), so no case-insensitive form can keep it.
_TEXT = st.text(
    st.characters(categories=("L", "M", "N", "P", "S", "Zs"), exclude_characters="ı"),
    max_size=40,
)
_SPACE = st.lists(
    st.sampled_from([" ", "\t", "\n", "\r\n", "\u00a0", "\u3000", " . ", "_"]), min_size=1
).map("".join)


@settings(max_examples=200, deadline=None)
@given(text=_TEXT)
def test_normalize_text_is_case_insensitive_and_idempotent(text: str) -> None:
    norm = normalize_text(text)
    assert normalize_text(text.upper()) == norm
    assert normalize_text(text.lower()) == norm
    assert normalize_text(text.swapcase()) == norm
    assert normalize_text(norm) == norm
    assert norm == norm.strip() and "  " not in norm
    assert fingerprint(text.upper()) == fingerprint(text)


@settings(max_examples=150, deadline=None)
@given(words=st.lists(_TEXT, min_size=1, max_size=6), spaces=st.lists(_SPACE, min_size=7))
def test_fingerprint_ignores_whitespace_changes(words: list[str], spaces: list[str]) -> None:
    plain = " ".join(words)
    respaced = spaces[0] + "".join(w + s for w, s in zip(words, spaces[1:], strict=False))
    assert normalize_text(respaced) == normalize_text(plain)
    assert fingerprint(respaced) == fingerprint(plain)


def test_fingerprint_examples() -> None:
    assert fingerprint("Straße  BLOOD!") == fingerprint("strasse blood")
    assert fingerprint("ｂｌｏｏｄ") == fingerprint("blood")
    assert fingerprint("blood") != fingerprint("bloody")
    assert len(fingerprint("x")) == 32 and int(fingerprint("x"), 16) >= 0
    fingerprint("lone \udcff surrogate")  # total: never raises


def test_verdict_fingerprint_follows_the_record_text(gate: Gate) -> None:
    a, b = gate.judge([make_record("A  Cat!", "x", 1), Record("a cat", "y", 99)])
    assert a.fingerprint == b.fingerprint == fingerprint("a cat")


# --- no torch on the scan path -----------------------------------------------------------------


def test_scan_does_not_import_torch(tmp_path: Path) -> None:
    prompts = write(tmp_path / "p.txt", "a cat\nblood everywhere\n")
    detectors = None  # the default detectors, shipped model included
    script = textwrap.dedent(
        f"""
        import sys
        from vgate.cli import app, main  # noqa: F401  (the CLI's import-time cost too)
        from vgate.commands.scan import ScanOptions, scan_command
        code = scan_command(ScanOptions(paths=[{str(prompts)!r}], detectors={detectors!r},
                                        output_format="json", output=None, quiet=True))
        print("CODE", code)
        print("TORCH", "torch" in sys.modules)
        print("DETECTORS", {detectors!r})
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "CODE 1" in lines, proc.stdout[-500:]
    assert "TORCH False" in lines


def test_input_errors_beyond_the_cap_are_counted_not_kept() -> None:
    from vgate.core.findings import MAX_KEPT_ERRORS

    summary = ScanSummary()
    kept = [summary.add_error(InputIssue("f", "x", n)) for n in range(1, MAX_KEPT_ERRORS + 6)]
    assert kept.count(True) == MAX_KEPT_ERRORS and kept[-1] is False
    assert len(summary.errors) == MAX_KEPT_ERRORS and summary.error_count == MAX_KEPT_ERRORS + 5
    assert exit_code(summary, "never") == 2


def test_cli_prints_at_most_the_kept_errors(tmp_path, vgate_main) -> None:
    from vgate.core.findings import MAX_KEPT_ERRORS

    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n" * (MAX_KEPT_ERRORS + 50) + '{"prompt": "a cat"}\n')
    result = vgate_main("scan", str(bad), "-d", "rules", "-f", "json", "-q")
    assert result.code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == MAX_KEPT_ERRORS + 1
    assert lines[-1] == "vgate: error: ... 50 more input errors not shown"
    report = json.loads(result.stdout)
    assert report["summary"]["error_count"] == MAX_KEPT_ERRORS + 50
    assert report["summary"]["scanned"] == 1


class Recorder:
    """A model stand-in that records what it reads and scores violent_bloody 0.9 on "blood"."""

    name = "model"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def detect(self, texts):
        from vgate.detectors.base import Detection

        self.seen.extend(texts)
        scores = np.zeros((len(texts), 5), dtype=np.float32)
        scores[:, CATEGORY_IDS.index("violent_bloody")] = [0.9 * ("blood" in t) for t in texts]
        return Detection(scores=scores)


def recording_gate(detectors: str = "model") -> tuple[Gate, Recorder]:
    gate = Gate("default", detectors=detectors)
    recorder = Recorder()
    gate._detectors = [recorder]
    return gate, recorder


def test_allow_phrases_are_blanked_for_the_model_unless_a_rule_match_reaches_into_them() -> None:
    gate, recorder = recording_gate()
    gate.scores(["a Blood Orange sliced on a board", "a cat", "a true blood bath"])
    assert "blood orange" not in recorder.seen[0].lower() and "sliced" in recorder.seen[0]
    assert recorder.seen[1] == "a cat"
    # "blood bath" (a term) reaches outside "true blood": the phrase hides nothing here
    assert recorder.seen[2] == "a true blood bath"


@pytest.mark.parametrize(
    "text",
    [
        "school shooting star victims lying motionless",
        "a true blood bath",
        "blood orange and blood on the floor",
    ],
)
def test_allow_phrases_never_hide_the_words_around_them(text: str) -> None:
    (verdict,) = Gate("default", detectors="rules").scan([text])
    assert verdict.decision == BLOCK, verdict.reasons


@pytest.mark.parametrize(
    "text", ["a blood orange on a plate", "a shooting star over the sea", "a killer whale"]
)
def test_allow_phrases_still_waive_their_own_words(text: str) -> None:
    (verdict,) = Gate("default", detectors="rules").scan([text])
    assert verdict.decision == ALLOW, verdict.reasons


def test_model_scores_the_normalised_text_too_and_keeps_the_maximum() -> None:
    gate, recorder = recording_gate()
    spaced, plain = "a b l o o d bath", "a cat"
    scores = gate.scores([spaced, plain])
    assert recorder.seen == [spaced, plain, "a blood bath"]  # plain text is scored once
    assert scores[0, CATEGORY_IDS.index("violent_bloody")] == pytest.approx(0.9)
    (verdict,) = gate.judge([make_record(spaced, "f", 1)])
    assert verdict.record.text == spaced  # reports keep the original text


@pytest.mark.parametrize(
    ("setting", "expected"), [("scan", ALLOW), ("warn", WARN), ("block", BLOCK)]
)
def test_long_prompt_policy(tmp_path: Path, setting: str, expected: str) -> None:
    policy = write(tmp_path / "p.yaml", f"extends: default\nlong_prompt: {setting}\n")
    gate = Gate(policy, detectors="rules")
    long, short = gate.judge(
        [make_record("x" * (LONG_PROMPT_CHARS + 1), "f", 1), make_record("x" * 10, "f", 2)]
    )
    assert long.decision == expected and short.decision == ALLOW
    if expected != ALLOW:
        assert long.reasons == [
            f"long prompt: {LONG_PROMPT_CHARS + 1:,} characters > {LONG_PROMPT_CHARS:,} "
            f"(long_prompt: {setting})"
        ]
