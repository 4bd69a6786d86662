"""The ``generation`` (latent defense) and ``video`` (frame checks) sections of a policy.

Each section has a frozen dataclass with defaults, a validator for one policy file's raw mapping
(run before ``extends`` merging, so errors name the file that has the problem) and a builder for
the merged mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from vgate.categories import CATEGORY_IDS
from vgate.policy.schema import (
    check_bool,
    check_choice,
    check_keys,
    check_mapping,
    check_number,
    check_string,
    fail,
)

DECISIONS = ("threshold", "vote")
ON_BLOCK = ("stop", "discard")
AGGREGATES = ("max", "vote")
MAX_STEPS = 10_000

GENERATION_KEYS = {
    "probe": "builtin:<name> or a path to a probe directory or .onnx file",
    "check_steps": "a list of sampling steps (1-based, increasing) at which the probe runs",
    "decision": "threshold (stop at the first flagged step) or vote",
    "vote_required": "with decision: vote, how many check steps must be flagged",
    "thresholds": "probe thresholds per category, numbers from 0 to 1",
    "on_block": "stop (abort sampling, no video) or discard (finish, then drop the video)",
    "output_check": "true to run the video frame check on the output before writing it",
}
VIDEO_KEYS = {
    "frames": "how many frames to sample uniformly per video",
    "fps": "sample this many frames per second instead of a fixed count",
    "aggregate": "max (any frame) or vote (a fraction of sampled frames)",
    "vote_fraction": "with aggregate: vote, the fraction of frames that must hit",
    "thresholds": "frame-detector thresholds per category, numbers from 0 to 1",
    "frame_model": "a path to an ONNX frame classifier, or nudenet (if installed)",
    "labels": "a path to the YAML that maps the frame model's outputs to categories",
    "text": "true to scan titles, descriptions, comments and subtitles with the prompt detectors",
}


def _default_thresholds() -> Mapping[str, float]:
    return dict.fromkeys(CATEGORY_IDS, 0.5)


@dataclass(frozen=True)
class GenerationPolicy:
    """How guarded generation checks the predicted clean latent during sampling."""

    probe: str | None = None
    check_steps: tuple[int, ...] = (1, 2, 3, 5, 10)
    decision: str = "threshold"
    vote_required: int = 1
    thresholds: Mapping[str, float] = field(default_factory=_default_thresholds)
    on_block: str = "stop"
    output_check: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "probe": self.probe,
            "check_steps": list(self.check_steps),
            "decision": self.decision,
            "vote_required": self.vote_required,
            "thresholds": dict(self.thresholds),
            "on_block": self.on_block,
            "output_check": self.output_check,
        }


@dataclass(frozen=True)
class VideoPolicy:
    """How ``vgate scan`` samples and judges the frames of video files."""

    frames: int = 16
    fps: float | None = None
    aggregate: str = "max"
    vote_fraction: float = 0.25
    thresholds: Mapping[str, float] = field(default_factory=_default_thresholds)
    frame_model: str | None = None
    labels: str | None = None
    text: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "fps": self.fps,
            "aggregate": self.aggregate,
            "vote_fraction": self.vote_fraction,
            "thresholds": dict(self.thresholds),
            "frame_model": self.frame_model,
            "labels": self.labels,
            "text": self.text,
        }


def _check_thresholds(name: str, key: str, value: object) -> None:
    mapping = check_mapping(name, key, value)
    check_keys(name, key, mapping, dict.fromkeys(CATEGORY_IDS, ""))
    for cid, threshold in mapping.items():
        check_number(name, f"{key}.{cid}", threshold, 0, 1)


def _check_steps(name: str, key: str, value: object) -> None:
    if not isinstance(value, list) or not value:
        raise fail(name, key, f"expected a non-empty list of step numbers, got {value!r}")
    for i, step in enumerate(value):
        check_number(name, f"{key}[{i}]", step, 1, MAX_STEPS, integer=True)
    if any(b <= a for a, b in pairwise(value)):
        raise fail(name, key, f"expected increasing step numbers without repeats, got {value!r}")


def validate_generation(name: str, value: object) -> None:
    """Check one policy file's ``generation`` mapping."""
    data = check_mapping(name, "generation", value)
    check_keys(name, "generation", data, GENERATION_KEYS)
    if data.get("probe") is not None:
        check_string(name, "generation.probe", data["probe"])
    if "check_steps" in data:
        _check_steps(name, "generation.check_steps", data["check_steps"])
    if "decision" in data:
        check_choice(name, "generation.decision", data["decision"], DECISIONS)
    if "vote_required" in data:
        check_number(
            name, "generation.vote_required", data["vote_required"], 1, MAX_STEPS, integer=True
        )
    if "thresholds" in data:
        _check_thresholds(name, "generation.thresholds", data["thresholds"])
    if "on_block" in data:
        check_choice(name, "generation.on_block", data["on_block"], ON_BLOCK)
    if "output_check" in data:
        check_bool(name, "generation.output_check", data["output_check"])


def build_generation(name: str, data: Mapping[str, Any]) -> GenerationPolicy:
    """The merged ``generation`` mapping as a dataclass; checks rules across keys."""
    default = GenerationPolicy()
    steps = tuple(data.get("check_steps", default.check_steps))
    required = int(data.get("vote_required", default.vote_required))
    decision = data.get("decision", default.decision)
    if decision == "vote" and required > len(steps):
        raise fail(
            name,
            "generation.vote_required",
            f"{required} flagged steps can never happen with {len(steps)} check steps",
        )
    return GenerationPolicy(
        probe=data.get("probe", default.probe),
        check_steps=steps,
        decision=decision,
        vote_required=required,
        thresholds={**default.thresholds, **data.get("thresholds", {})},
        on_block=data.get("on_block", default.on_block),
        output_check=bool(data.get("output_check", default.output_check)),
    )


def validate_video(name: str, value: object) -> None:
    """Check one policy file's ``video`` mapping."""
    data = check_mapping(name, "video", value)
    check_keys(name, "video", data, VIDEO_KEYS)
    if "frames" in data:
        check_number(name, "video.frames", data["frames"], 1, MAX_STEPS, integer=True)
    if data.get("fps") is not None:
        check_number(name, "video.fps", data["fps"], 0.001, 1000)
    if "aggregate" in data:
        check_choice(name, "video.aggregate", data["aggregate"], AGGREGATES)
    if "vote_fraction" in data:
        check_number(name, "video.vote_fraction", data["vote_fraction"], 0, 1)
    if "thresholds" in data:
        _check_thresholds(name, "video.thresholds", data["thresholds"])
    for key in ("frame_model", "labels"):
        if data.get(key) is not None:
            check_string(name, f"video.{key}", data[key])
    if "text" in data:
        check_bool(name, "video.text", data["text"])


def build_video(name: str, data: Mapping[str, Any]) -> VideoPolicy:
    """The merged ``video`` mapping as a dataclass."""
    del name  # no rules across keys yet
    default = VideoPolicy()
    fps = data.get("fps", default.fps)
    return VideoPolicy(
        frames=int(data.get("frames", default.frames)),
        fps=None if fps is None else float(fps),
        aggregate=data.get("aggregate", default.aggregate),
        vote_fraction=float(data.get("vote_fraction", default.vote_fraction)),
        thresholds={**default.thresholds, **data.get("thresholds", {})},
        frame_model=data.get("frame_model", default.frame_model),
        labels=data.get("labels", default.labels),
        text=bool(data.get("text", default.text)),
    )
