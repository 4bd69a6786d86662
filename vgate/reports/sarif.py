"""SARIF 2.1.0 report that GitHub code scanning accepts: one rule per category.

One result per (flagged prompt, hit category). Locations are repository-relative URIs under
``%SRCROOT%`` with ``region.startLine`` when the line is known. Inputs without a file (stdin,
``--text``) are reported at an artifact named after their pseudo-source, percent-encoded
(``<stdin>`` -> ``%3Cstdin%3E``): code scanning needs a non-empty artifact URI on every result.

GitHub rejects runs with more than 25,000 results, so at most ``MAX_RESULTS`` are written; errors
are kept before warnings, and the run's ``properties`` say how many were left out.
"""

from __future__ import annotations

import functools
import os.path
import shlex
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from vgate import __version__
from vgate.categories import CATEGORIES, CATEGORY_INDEX, Category
from vgate.core.findings import (
    BLOCK,
    FINGERPRINT_KEY,
    VIDEO_ERROR,
    WARN,
    CategoryHit,
    InputIssue,
    MediaRef,
    ScanMeta,
    ScanSummary,
    Verdict,
)
from vgate.reports.common import number, one_line, score_map, seconds, span, summary_item
from vgate.reports.json_report import dumps

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
SARIF_VERSION = "2.1.0"
SRCROOT = "%SRCROOT%"
MAX_RESULTS = 25_000
"""GitHub code scanning's hard limit of results per run."""
MESSAGE_PROMPT_WIDTH = 200
DEFAULT_INFORMATION_URI = "https://pypi.org/project/vgate/"
"""Used when the installed package metadata names no project URL."""

LEVELS = {BLOCK: "error", WARN: "warning"}
_LEVEL_RANK = {"error": 0, "warning": 1}

# GitHub maps security-severity to critical (>= 9), high (7-8.9), medium (4-6.9), low (< 4).
# The default level follows the action of the shipped default policy.
_SEVERITY = {
    "distorted_weird": ("4.0", "warning"),
    "terrifying": ("5.0", "warning"),
    "pornographic": ("8.0", "error"),
    "violent_bloody": ("8.0", "error"),
    "political": ("7.0", "error"),
}


def information_uri() -> str:
    """The project's home page from the installed metadata, else ``DEFAULT_INFORMATION_URI``."""
    try:
        meta = metadata.metadata("vgate")
    except metadata.PackageNotFoundError:
        return DEFAULT_INFORMATION_URI
    for entry in meta.get_all("Project-URL") or []:
        _, _, url = entry.partition(",")
        if url.strip().startswith("https://"):
            return url.strip()
    home = next(iter(meta.get_all("Home-page") or []), None)
    return home if home and home.startswith("https://") else DEFAULT_INFORMATION_URI


def rule(category: Category) -> dict[str, Any]:
    """The SARIF reportingDescriptor of one category."""
    severity, level = _SEVERITY.get(category.id, ("5.0", "warning"))
    name = "".join(part.capitalize() for part in category.id.split("_"))
    short = f"{category.title} content in a text-to-video prompt"
    help_text = (
        f"{category.description} A prompt scored at or above the policy threshold for "
        f"'{category.id}'. Rewrite or remove the prompt; if it is a false positive, add "
        "'# vgate: allow' to its line, add it to the policy's allow list, or record it in a "
        "baseline (vgate scan --baseline FILE)."
    )
    help_markdown = (
        f"**{category.title}** (`{category.id}`): {category.description}\n\n"
        "The prompt scored at or above the policy threshold for this category.\n\n"
        "- Rewrite or remove the prompt.\n"
        "- False positive? Add `# vgate: allow` to its line, add it to the policy's `allow` "
        "list, or record it in a baseline: `vgate scan --format sarif --output base.sarif` "
        "then `vgate scan --baseline base.sarif`."
    )
    return {
        "id": category.rule_id,
        "name": name,
        "shortDescription": {"text": short},
        "fullDescription": {"text": category.description},
        "help": {"text": help_text, "markdown": help_markdown},
        "defaultConfiguration": {"level": level},
        "properties": {
            "tags": ["security", "content-safety", "text-to-video", category.id],
            "security-severity": severity,
            "precision": "medium",
        },
    }


@functools.lru_cache(maxsize=4096)
def artifact_uri(source: str, working_directory: str = ".") -> tuple[str, str | None]:
    """(uri, uriBaseId) of a source: relative to the working directory with forward slashes.

    Files outside the working directory get an absolute ``file://`` URI and no base id.
    Pseudo-sources such as ``<stdin>`` (or ``-``) keep their name, percent-encoded.
    """
    if source in ("", "-"):
        source = "<stdin>"
    if source.startswith("<") and source.endswith(">"):
        return quote(source, safe="", errors="backslashreplace"), SRCROOT
    path = Path(source)
    base = Path(working_directory or ".").resolve()
    absolute = path if path.is_absolute() else base / path
    absolute = Path(os.path.normpath(absolute))
    try:
        relative = absolute.relative_to(base)
    except ValueError:
        return absolute.as_uri(), None
    return quote(relative.as_posix(), safe="/", errors="backslashreplace"), SRCROOT


def physical_location(source: str, line: int | None, working_directory: str) -> dict[str, Any]:
    """A SARIF physicalLocation; ``region`` only when ``line`` >= 1."""
    uri, base = artifact_uri(source, working_directory)
    artifact: dict[str, Any] = {"uri": uri}
    if base:
        artifact["uriBaseId"] = base
    physical: dict[str, Any] = {"artifactLocation": artifact}
    if line and line >= 1:
        physical["region"] = {"startLine": int(line)}
    return {"physicalLocation": physical}


def utc_now() -> str:
    """Current UTC time as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class SarifReporter:
    """Keeps only results of flagged prompts (at most ``max_results``) and writes at ``finish``.

    With ``show_all``, prompts whose hits were waived (``suppressed_by``) are written too, each
    with a SARIF ``suppressions`` entry, so code scanning shows them as dismissed.
    """

    def __init__(
        self, stream: TextIO, *, show_all: bool = False, max_results: int = MAX_RESULTS
    ) -> None:
        self.stream = stream
        self.show_all = show_all
        self.max_results = max_results
        self._meta: ScanMeta | None = None
        self._kept: dict[str, list[tuple[int, dict[str, Any]]]] = {"error": [], "warning": []}
        self._seen = 0
        self._omitted = 0

    def start(self, meta: ScanMeta) -> None:
        self._meta = meta

    def add(self, verdict: Verdict) -> None:
        if not (verdict.flagged or (self.show_all and verdict.suppressed_by)):
            return
        working_directory = self._meta.working_directory if self._meta else "."
        for hit in verdict.hits:
            level = LEVELS.get(hit.action)
            if level is None or hit.category not in CATEGORY_INDEX:
                continue
            self._keep(level, self._result(verdict, hit.category, hit, level, working_directory))

    def _keep(self, level: str, result: dict[str, Any]) -> None:
        """Keep the first ``max_results`` results, errors before warnings."""
        self._kept[level].append((self._seen, result))
        self._seen += 1
        if len(self._kept["error"]) + len(self._kept["warning"]) > self.max_results:
            self._omitted += 1
            (self._kept["warning"] or self._kept["error"]).pop()

    def _result(
        self, verdict: Verdict, category: str, hit: CategoryHit, level: str, working_directory: str
    ) -> dict[str, Any]:
        record = verdict.record
        title = CATEGORIES[CATEGORY_INDEX[category]].title
        if record.media is not None:
            message = _video_message(verdict, hit, title)
        else:
            prompt = one_line(record.text, MESSAGE_PROMPT_WIDTH)
            message = (
                f"{title} ({category}): score {float(hit.score):.2f} >= threshold "
                f'{float(hit.threshold):.2f}, action {hit.action}. Prompt: "{prompt}"'
            )
        result: dict[str, Any] = {
            "ruleId": f"vgate/{category}",
            "ruleIndex": CATEGORY_INDEX[category],
            "level": level,
            "message": {"text": message},
            "locations": [physical_location(record.source, record.line, working_directory)],
            "partialFingerprints": {FINGERPRINT_KEY: verdict.fingerprint},
            "properties": {
                "category": category,
                "score": number(hit.score),
                "threshold": number(hit.threshold),
                "action": hit.action,
                "decision": verdict.decision,
                "scores": score_map(verdict.scores),
                "detectorScores": {
                    name: score_map(s) for name, s in verdict.detector_scores.items()
                },
                "reasons": list(verdict.reasons),
                "notes": list(verdict.notes),
                **verdict.properties,
            },
        }
        if record.media is not None:
            result["properties"].update(_video_properties(record.media, hit))
        if verdict.suppressed_by:
            kind = "inSource" if verdict.suppressed_by == "inline" else "external"
            result["suppressions"] = [
                {"kind": kind, "justification": f"vgate: suppressed by {verdict.suppressed_by}"}
            ]
        return result

    def finish(self, summary: ScanSummary) -> None:
        self.stream.write(dumps(self.document(summary)) + "\n")
        self.stream.flush()

    def document(self, summary: ScanSummary) -> dict[str, Any]:
        """The whole SARIF log as a dict."""
        meta = self._meta
        working_directory = meta.working_directory if meta else "."
        results = sorted(self._kept["error"] + self._kept["warning"], key=lambda item: item[0])
        notifications = [_notification(issue, working_directory) for issue in summary.errors]
        notifications.extend(
            {"level": "warning", "message": {"text": note}, "descriptor": {"id": "vgate/note"}}
            for note in summary.notes
        )
        if self._omitted:
            notifications.append(
                {
                    "level": "warning",
                    "message": {
                        "text": f"{self._omitted} results left out: GitHub code scanning accepts "
                        f"at most {self.max_results} results per run. Use --format json for all."
                    },
                    "descriptor": {"id": "vgate/results-capped"},
                }
            )
        invocation: dict[str, Any] = {
            "executionSuccessful": True,
            "endTimeUtc": utc_now(),
            "toolExecutionNotifications": notifications,
        }
        if meta:
            invocation["commandLine"] = shlex.join(meta.command_line)
            invocation["arguments"] = list(meta.command_line[1:])
            if meta.start_time_utc:
                invocation["startTimeUtc"] = meta.start_time_utc
        base = Path(working_directory or ".").resolve()
        invocation["workingDirectory"] = {"uri": base.as_uri()}
        properties: dict[str, Any] = {
            "summary": summary_item(summary),
            "resultsCapped": bool(self._omitted),
            "resultsOmitted": self._omitted,
        }
        if meta:
            properties["policy"] = meta.policy
            properties["detectors"] = list(meta.detectors)
            properties["failOn"] = meta.fail_on
        run = {
            "tool": {
                "driver": {
                    "name": "vgate",
                    "version": __version__,
                    "semanticVersion": __version__,
                    "informationUri": information_uri(),
                    "rules": [rule(c) for c in CATEGORIES],
                }
            },
            "originalUriBaseIds": {SRCROOT: {"uri": base.as_uri().rstrip("/") + "/"}},
            "invocations": [invocation],
            "columnKind": "unicodeCodePoints",
            "results": [result for _, result in results],
            "properties": properties,
        }
        return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def _video_message(verdict: Verdict, hit: CategoryHit, title: str) -> str:
    """The message of a result on a video: which part, when, and the score."""
    media = verdict.record.media
    assert media is not None
    score = f"score {float(hit.score):.2f} >= threshold {float(hit.threshold):.2f}"
    if media.part == "frames":
        when = (
            f" at {hit.start_s:.2f}-{hit.end_s:.2f} s"
            if hit.start_s is not None and hit.end_s is not None
            else ""
        )
        count = f" in {hit.frames} of {media.frames} sampled frames" if hit.frames else ""
        action = f"action {hit.action}"
        return f"{title} ({hit.category}) in video frames{when}: {score}{count}, {action}."
    text = one_line(verdict.record.text, MESSAGE_PROMPT_WIDTH)
    where = f"{media.part} {span(media)}".strip()
    action = f"action {hit.action}"
    return f'{title} ({hit.category}) in video {where}: {score}, {action}. Text: "{text}"'


def _video_properties(media: MediaRef, hit: CategoryHit) -> dict[str, Any]:
    """Where in the video a result is: the part and start/end seconds (no SARIF region)."""
    start = hit.start_s if hit.start_s is not None else media.start_s
    end = hit.end_s if hit.end_s is not None else media.end_s
    properties: dict[str, Any] = {
        "videoPart": media.part,
        "startSeconds": seconds(start),
        "endSeconds": seconds(end),
    }
    if media.frames is not None:
        properties["sampledFrames"] = media.frames
        properties["flaggedFrames"] = hit.frames
        properties["durationSeconds"] = seconds(media.duration_s)
    if media.stream is not None:
        properties["stream"] = media.stream
    return properties


def _notification(issue: InputIssue, working_directory: str) -> dict[str, Any]:
    video = issue.kind == VIDEO_ERROR
    notification: dict[str, Any] = {
        "level": "error",
        "message": {"text": str(issue)},
        "descriptor": {"id": "vgate/video-error" if video else "vgate/input-error"},
    }
    if issue.source:
        notification["locations"] = [physical_location(issue.source, issue.line, working_directory)]
    return notification
