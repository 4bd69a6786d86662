"""Shared pieces of the report formats: shortening, locations and the JSON shape of a verdict."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from vgate import __version__
from vgate.categories import CATEGORY_IDS
from vgate.core.findings import (
    VIDEO_ERROR,
    CategoryHit,
    InputIssue,
    MediaRef,
    Record,
    ScanMeta,
    ScanSummary,
    Verdict,
)

TOOL = {"name": "vgate", "version": __version__}
"""``tool`` object of the JSON and JSONL reports; the baseline loader recognises it."""

REPORT_FORMAT_VERSION = 1
"""Bumped when the JSON item shape changes incompatibly."""

JSON_TEXT_LIMIT = 500
"""Prompts longer than this are shortened in JSON and JSONL items."""

_LANGUAGE_NOTE = re.compile(r"^\s*language(?:\s*[:=]\s*|\s+)(?P<value>[\w-]+)", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


def number(value: float) -> float | None:
    """``value`` rounded to 4 places; ``None`` for NaN or infinity, which JSON cannot hold."""
    value = float(value)
    return round(value, 4) if math.isfinite(value) else None


def score_map(scores: Any) -> dict[str, float | None]:
    """Five scores in ``CATEGORY_IDS`` order as ``{category: score}`` (rounded; NaN -> None)."""
    values = scores.tolist() if isinstance(scores, np.ndarray) else [float(v) for v in scores]
    return {
        c: round(v, 4) if math.isfinite(v) else None
        for c, v in zip(CATEGORY_IDS, values, strict=True)
    }


def shorten(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` characters (ending in ``…``) and whether it was cut."""
    if len(text) <= limit:
        return text, False
    return text[: max(limit - 1, 0)] + "…", True


def one_line(text: str, limit: int) -> str:
    """``text`` with whitespace runs (newlines included) collapsed, shortened to ``limit``."""
    return shorten(_WHITESPACE.sub(" ", text).strip(), limit)[0]


def location(source: str, line: int | None) -> str:
    """``file:line`` when the line is known (>= 1), else just the source."""
    return f"{source}:{line}" if line and line >= 1 else source


def seconds(value: float | None) -> float | None:
    """A time in seconds rounded to milliseconds (None stays None)."""
    return None if value is None else round(float(value), 3)


def span(media: MediaRef) -> str:
    """``1.50-2.50 s`` for a time range, else empty."""
    if media.start_s is None:
        return ""
    end = media.end_s if media.end_s is not None else media.start_s
    return f"{media.start_s:.2f}-{end:.2f} s"


def record_location(record: Record) -> str:
    """``file:line`` for prompts; ``clip.mp4 [frames 1.50-2.50 s]``, ``clip.mp4 [subtitle
    2.00-3.50 s]`` or ``clip.mp4 [metadata:title]`` for parts of a video."""
    media = record.media
    if media is None:
        return location(record.source, record.line)
    when = span(media)
    return f"{record.source} [{media.part}{' ' + when if when else ''}]"


def media_item(media: MediaRef) -> dict[str, Any]:
    """The JSON object of where in a video a record comes from."""
    item: dict[str, Any] = {
        "part": media.part,
        "start_s": seconds(media.start_s),
        "end_s": seconds(media.end_s),
    }
    if media.stream is not None:
        item["stream"] = media.stream
    if media.frames is not None:
        item["sampled_frames"] = media.frames
        item["duration_s"] = seconds(media.duration_s)
    return item


def hit_item(hit: CategoryHit) -> dict[str, Any]:
    """The JSON object of one category hit (video frames: with its time range)."""
    item: dict[str, Any] = {
        "category": hit.category,
        "score": number(hit.score),
        "threshold": number(hit.threshold),
        "action": hit.action,
    }
    if hit.start_s is not None:
        item.update(start_s=seconds(hit.start_s), end_s=seconds(hit.end_s), frames=hit.frames)
    return item


def language_of(notes: list[str]) -> str | None:
    """The first word of a ``language: xx ...`` (or ``language=xx``) note, if there is one."""
    for note in notes:
        match = _LANGUAGE_NOTE.match(note)
        if match:
            return match.group("value")
    return None


def verdict_item(verdict: Verdict, text_limit: int = JSON_TEXT_LIMIT) -> dict[str, Any]:
    """The JSON object of one scanned prompt, shared by the JSON and JSONL reports."""
    record = verdict.record
    text, shortened = shorten(record.text, text_limit)
    item: dict[str, Any] = {
        "location": record_location(record),
        "source": record.source,
        "line": record.line if record.line >= 1 else None,
        "text": text,
        "text_shortened": shortened,
        "input_truncated": record.truncated,
        "fingerprint": verdict.fingerprint,
        "decision": verdict.decision,
        "scores": score_map(verdict.scores),
        "detector_scores": {
            name: score_map(scores) for name, scores in verdict.detector_scores.items()
        },
        "hits": [hit_item(hit) for hit in verdict.hits],
        "reasons": list(verdict.reasons),
        "notes": list(verdict.notes),
        "language": language_of(verdict.notes),
        "suppressed_by": verdict.suppressed_by,
        **({"properties": verdict.properties} if verdict.properties else {}),
    }
    if record.media is not None:
        item["video"] = media_item(record.media)
    return item


def issue_item(issue: InputIssue) -> dict[str, Any]:
    """The JSON object of one input error (``kind: video`` for a video that could not be
    scanned, or only in part)."""
    item: dict[str, Any] = {"source": issue.source, "line": issue.line, "message": issue.message}
    if issue.kind == VIDEO_ERROR:
        item["kind"] = VIDEO_ERROR
    return item


def summary_item(summary: ScanSummary) -> dict[str, Any]:
    """The JSON object of the scan summary; ``per_category`` lists all five categories."""
    return {
        "scanned": summary.scanned,
        "blocked": summary.blocked,
        "warned": summary.warned,
        "suppressed": summary.suppressed,
        "per_category": {c: int(summary.per_category.get(c, 0)) for c in CATEGORY_IDS},
        "errors": [issue_item(issue) for issue in summary.errors],
        "error_count": summary.error_count,
        "seconds": round(float(summary.seconds), 3) if math.isfinite(summary.seconds) else None,
        "videos": summary.videos,
        "video_errors": summary.video_errors,
        "notes": list(summary.notes),
    }


def meta_item(meta: ScanMeta) -> dict[str, Any]:
    """The JSON object of the run's metadata."""
    return {
        "policy": meta.policy,
        "detectors": list(meta.detectors),
        "command_line": list(meta.command_line),
        "start_time_utc": meta.start_time_utc,
        "fail_on": meta.fail_on,
        "working_directory": meta.working_directory,
    }
