"""The records a scan reads and the verdicts it produces; shared by scan, policy and reports."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BLOCK = "block"
WARN = "warn"
ALLOW = "allow"
ACTIONS = (BLOCK, WARN, ALLOW)
ACTION_RANK = {ALLOW: 0, WARN: 1, BLOCK: 2}

FINGERPRINT_KEY = "vgatePromptHash/v1"
"""SARIF ``partialFingerprints`` key holding the prompt fingerprint (reports and baselines)."""

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalize_text(text: str) -> str:
    """NFKC case-folded (``ß`` and ``SS`` alike), non-word runs to one space: the form
    fingerprints are computed from."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return _NON_WORD.sub(" ", folded).strip()


def fingerprint(text: str) -> str:
    """Stable hash of the normalized prompt, so baselines survive line moves and re-spacing."""
    data = normalize_text(text).encode("utf-8", "surrogatepass")  # total, even on lone surrogates
    return hashlib.sha256(data).hexdigest()[:32]


@dataclass
class MediaRef:
    """Where in a video a record comes from: its frames, a metadata field or a subtitle cue."""

    part: str
    """``frames``, ``subtitle`` or ``metadata:<key>`` (``metadata:title``)."""
    start_s: float | None = None
    """Start of the time range in seconds (frames: first flagged sampled frame)."""
    end_s: float | None = None
    """End of the time range in seconds (frames: end of the last flagged sampled frame)."""
    stream: int | None = None
    """Index of the subtitle stream in the container."""
    frames: int | None = None
    """Frames: how many frames were sampled and scored."""
    duration_s: float | None = None
    """Frames: the video's duration in seconds."""


@dataclass
class Record:
    """One prompt to scan and where it came from (``line`` is 1-based, 0 when not applicable)."""

    text: str
    source: str
    line: int = 0
    truncated: bool = False
    suppressed: bool = False
    """The input carries an inline ``# vgate: allow`` comment."""
    media: MediaRef | None = None
    """Set for records that come from a video file."""
    key: str | None = None
    """Fingerprinted instead of ``text`` when set (a video's frames: its content hash)."""

    @property
    def fingerprint(self) -> str:
        """What baselines match on: ``key`` when set, else the normalized text's hash."""
        return self.key if self.key is not None else fingerprint(self.text)


INPUT_ERROR = "input"
VIDEO_ERROR = "video"


@dataclass
class InputIssue:
    """A file or line that could not be read; reported, and the scan goes on.

    ``kind`` is ``input`` (a prompt input: the scan exits 2, failing closed) or ``video`` (a
    video that could not be scanned, or only in part: exit 2 only when nothing was scanned).
    """

    source: str
    message: str
    line: int | None = None
    kind: str = INPUT_ERROR

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.message}"


@dataclass
class CategoryHit:
    """A category whose score reached the policy threshold."""

    category: str
    score: float
    threshold: float
    action: str
    start_s: float | None = None
    """Video frames: start of the flagged frames (seconds)."""
    end_s: float | None = None
    """Video frames: end of the flagged frames (seconds)."""
    frames: int | None = None
    """Video frames: how many sampled frames reached the threshold."""


def strongest_action(hits: list[CategoryHit]) -> str:
    """The decision for a set of hits: the strongest action among them (allow when none)."""
    return max((h.action for h in hits), key=ACTION_RANK.__getitem__, default=ALLOW)


@dataclass
class Verdict:
    """The decision on one record."""

    record: Record
    scores: np.ndarray
    """Combined float32 scores [5] in ``CATEGORY_IDS`` order."""
    detector_scores: dict[str, np.ndarray]
    decision: str
    hits: list[CategoryHit] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    suppressed_by: str | None = None
    """``inline``, ``allow-list`` or ``baseline`` when a hit was waived; decision is then allow."""
    properties: dict[str, Any] = field(default_factory=dict)
    """Extra facts for JSON and SARIF (e.g. the step a guarded generation stopped at, or the
    time range of a video finding); JSON-serialisable values only."""

    @property
    def fingerprint(self) -> str:
        return self.record.fingerprint

    @property
    def flagged(self) -> bool:
        return self.decision != ALLOW


Baseline = set[tuple[str, str]]
"""(category, fingerprint) pairs of known findings (``vgate.core.baseline.load_baseline``)."""


def build_verdict(
    record: Record,
    scores: np.ndarray,
    detector_scores: dict[str, np.ndarray],
    hits: list[CategoryHit],
    reasons: list[str],
    *,
    waiver: str | None = None,
    notes: Sequence[str] = (),
    baseline: Baseline | None = None,
) -> Verdict:
    """The one place a verdict's decision is made: the strongest action among ``hits``, unless
    they are waived by ``waiver`` (``inline``, ``allow-list``) or all of them are in
    ``baseline``; a waived verdict is allowed and says why in its last reason."""
    suppressed_by = waiver if hits else None
    if (
        suppressed_by is None
        and hits
        and baseline
        and all((hit.category, record.fingerprint) in baseline for hit in hits)
    ):
        suppressed_by = "baseline"
    if suppressed_by:
        reasons = [*reasons, f"waived by {suppressed_by}"]
    return Verdict(
        record=record,
        scores=scores,
        detector_scores=detector_scores,
        decision=ALLOW if suppressed_by else strongest_action(hits),
        hits=hits,
        reasons=reasons,
        notes=list(notes),
        suppressed_by=suppressed_by,
    )


MAX_KEPT_ERRORS = 1_000
"""Input errors kept for reports; further ones are only counted (``error_count``)."""


@dataclass
class ScanSummary:
    """Counts for the summary line, the JSON report and the exit code."""

    scanned: int = 0
    blocked: int = 0
    warned: int = 0
    suppressed: int = 0
    per_category: Counter = field(default_factory=Counter)
    errors: list[InputIssue] = field(default_factory=list)
    """The first ``MAX_KEPT_ERRORS`` input errors."""
    errors_not_kept: int = 0
    seconds: float = 0.0
    videos: int = 0
    """Video files opened and scanned (in full or in part)."""
    video_errors: int = 0
    """Input errors of kind ``video`` (kept or not)."""
    notes: list[str] = field(default_factory=list)
    """Run-level remarks for the reports (e.g. no frame detector configured)."""

    @property
    def error_count(self) -> int:
        """All input errors, kept or not."""
        return len(self.errors) + self.errors_not_kept

    @property
    def failing_errors(self) -> int:
        """Input errors that make the scan exit 2 on their own (all but video errors)."""
        return self.error_count - self.video_errors

    def add_error(self, issue: InputIssue) -> bool:
        """Count an input error; keep it (and return True) while fewer than the cap are kept."""
        if issue.kind == VIDEO_ERROR:
            self.video_errors += 1
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(issue)
            return True
        self.errors_not_kept += 1
        return False

    def add(self, verdict: Verdict) -> None:
        self.scanned += 1
        if verdict.suppressed_by:
            self.suppressed += 1
        if verdict.decision == BLOCK:
            self.blocked += 1
        elif verdict.decision == WARN:
            self.warned += 1
        for hit in verdict.hits if verdict.flagged else ():
            self.per_category[hit.category] += 1


@dataclass
class ScanMeta:
    """What reports say about the run itself."""

    policy: str
    """Policy name (``default``) or path."""
    detectors: list[str]
    command_line: list[str]
    start_time_utc: str
    """ISO 8601, e.g. ``2026-11-25T16:24:13Z``."""
    fail_on: str = BLOCK
    working_directory: str = "."
