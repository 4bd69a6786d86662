"""Videos to verdicts: frame scores aggregated per video, with time ranges, and the text side.

A frame detector scores every sampled frame (``scores[F, 5]``). Per category, the video's score
is the k-th highest frame score: k = 1 with ``video.aggregate: max`` (any frame), k =
ceil(vote_fraction x F) with ``vote`` (a temporal vote: that many sampled frames must reach the
threshold). A category is a hit when that score reaches ``video.thresholds`` and its policy
action is not ``allow``; its time range spans the sampled frames that reached the threshold.

The text side (metadata title/description/comment/synopsis and subtitle cues) goes through the
prompt gate, with the prompt thresholds. For guarded generation, ``check_frames`` runs the same
frame check on an array of frames.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vgate.categories import CATEGORY_IDS
from vgate.core.findings import (
    ALLOW,
    VIDEO_ERROR,
    Baseline,
    CategoryHit,
    InputIssue,
    MediaRef,
    Record,
    Verdict,
    build_verdict,
)
from vgate.core.gate import Gate
from vgate.detectors.frames import FrameDetector, load_frame_detector
from vgate.errors import InputError, MissingExtraError, VgateError
from vgate.inputs.prompts import make_record
from vgate.inputs.video import VideoItem, VideoReader, sample_times
from vgate.policy import Policy, load_policy

FRAME_BATCH = 32
"""Frames scored per detector call while decoding."""
NO_FRAME_DETECTOR = (
    "no frame detector configured: the frames of {n} video(s) were not checked, only their "
    "text side; set --frame-model and --labels (or video.frame_model and video.labels)"
)


def frames_text(sampled: int, duration: float) -> str:
    """The ``text`` of a frames record, shown where a prompt would be."""
    return f"[video frames: {sampled} sampled over {duration:.2f} s]"


def file_key(path: Path) -> str:
    """Content hash of a video file: its frames verdict's fingerprint (baselines survive
    renames and moves, not re-encoding)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "video-" + digest.hexdigest()[:26]


class FrameChecker:
    """The policy's ``video`` section with its frame detector (None when none is configured).

    ``frames`` / ``fps`` override the policy's sampling (``--frames`` / ``--fps``); giving
    ``frames`` drops the policy's ``fps``. ``frame_model`` / ``labels`` override the policy's.
    """

    def __init__(
        self,
        policy: Policy,
        *,
        frames: int | None = None,
        fps: float | None = None,
        frame_model: str | None = None,
        labels: str | None = None,
        detector: FrameDetector | None = None,
    ) -> None:
        video = policy.video
        self.policy = policy
        self.fps = fps if fps is not None else (None if frames is not None else video.fps)
        self.frames = frames if frames is not None else video.frames
        self.model_ref = frame_model or video.frame_model
        self.labels_ref = labels or video.labels
        self._detector = detector

    @property
    def configured(self) -> bool:
        return self._detector is not None or self.model_ref is not None

    @property
    def detector(self) -> FrameDetector | None:
        """The frame detector, loaded on first use (a broken model raises here)."""
        if self._detector is None and self.model_ref is not None:
            self._detector = load_frame_detector(self.model_ref, self.labels_ref)
        return self._detector

    def sample_times(self, duration: float) -> list[float]:
        return sample_times(duration, frames=self.frames, fps=self.fps)

    def score(self, frames: np.ndarray) -> np.ndarray:
        """``scores[n, 5]`` of uint8 RGB frames ``[n, H, W, 3]``."""
        detector = self.detector
        if detector is None:
            raise VgateError(
                "no frame detector configured: set --frame-model and --labels "
                "(or video.frame_model and video.labels in the policy)"
            )
        out = [
            detector.detect_frames(frames[i : i + FRAME_BATCH]).scores
            for i in range(0, len(frames), FRAME_BATCH)
        ]
        return np.concatenate(out) if out else np.zeros((0, len(CATEGORY_IDS)), np.float32)

    def judge(
        self,
        record: Record,
        times: np.ndarray,
        shown: np.ndarray,
        scores: np.ndarray,
        *,
        notes: Sequence[str] = (),
        baseline: Baseline | None = None,
    ) -> Verdict:
        """The final verdict on a video's frames: ``times`` and ``shown`` (seconds) and
        ``scores`` ``[F, 5]`` of its sampled frames, with ``notes``; hits all in ``baseline``
        are waived."""
        video = self.policy.video
        count = len(scores)
        k = 1 if video.aggregate == "max" else max(1, math.ceil(video.vote_fraction * count - 1e-9))
        k = min(k, count)
        ranked = -np.sort(-scores, axis=0)
        combined = ranked[k - 1].astype(np.float32)
        name = self.detector.name if self.detector is not None else "frames"
        hits: list[CategoryHit] = []
        reasons: list[str] = []
        for i, cid in enumerate(CATEGORY_IDS):
            action = self.policy.categories[cid].action
            threshold = float(video.thresholds[cid])
            score = float(combined[i])
            if action == ALLOW or not score >= threshold:
                continue
            over = scores[:, i] >= threshold
            start, end = float(times[over].min()), float((times + shown)[over].max())
            hits.append(CategoryHit(cid, score, threshold, action, start, end, int(over.sum())))
            vote = f"; vote: at least {k} frames" if video.aggregate == "vote" else ""
            reasons.append(
                f"{cid} {score:.2f} >= {threshold:.2f} in {int(over.sum())} of {count} sampled "
                f"frames, {start:.2f}-{end:.2f} s ({name} max {float(scores[:, i].max()):.2f}"
                f"{vote})"
            )
        if hits and record.media is not None:
            record.media.start_s = min(h.start_s for h in hits if h.start_s is not None)
            record.media.end_s = max(h.end_s for h in hits if h.end_s is not None)
        return build_verdict(
            record,
            combined,
            {name: combined.copy()},
            hits,
            reasons,
            notes=notes,
            baseline=baseline,
        )

    def check(self, frames: np.ndarray, fps: float, source: str = "<generated>") -> Verdict:
        """Sample ``frames`` (uint8 ``[F, H, W, 3]`` RGB at ``fps``) as the policy says, score
        and judge them."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise VgateError(
                f"check_frames: expected uint8 frames [F, H, W, 3], got {frames.dtype} "
                f"{list(frames.shape)}"
            )
        if not len(frames) or not fps > 0:
            raise VgateError("check_frames: no frames, or fps is not positive")
        duration = len(frames) / fps
        times = np.asarray(self.sample_times(duration))
        index = np.unique(np.minimum(len(frames) - 1, np.floor(times * fps + 1e-9).astype(int)))
        scores = self.score(frames[index])
        record = Record(
            text=frames_text(len(index), duration),
            source=source,
            media=MediaRef("frames", frames=len(index), duration_s=duration),
            key="frames-" + hashlib.sha256(frames[index].tobytes()).hexdigest()[:25],
        )
        return self.judge(record, index / fps, np.full(len(index), 1 / fps), scores)


def check_frames(
    frames: np.ndarray,
    fps: float,
    policy: Policy | str | Path = "default",
    *,
    frame_model: str | None = None,
    labels: str | None = None,
    source: str = "<generated>",
) -> Verdict:
    """The frame check of ``vgate scan`` on frames in memory (guarded generation's output gate).

    ``frames``: uint8 ``[F, H, W, 3]`` RGB; ``fps``: their frame rate. Sampling, aggregation and
    thresholds come from the policy's ``video`` section; ``frame_model`` / ``labels`` override
    its ``frame_model`` / ``labels``. Returns one ``Verdict`` (record part ``frames``; each hit
    has ``start_s`` / ``end_s``). Raises ``VgateError`` when no frame detector is configured.
    For many videos, build one ``FrameChecker`` and call ``check`` (the model loads once).
    """
    resolved = policy if isinstance(policy, Policy) else load_policy(policy)
    checker = FrameChecker(resolved, frame_model=frame_model, labels=labels)
    return checker.check(frames, fps, source)


@dataclass
class _SampledFrames:
    """A video's scored frames, waiting for the verdict: ``judge`` arguments and notes."""

    data: tuple[Record, np.ndarray, np.ndarray, np.ndarray]
    notes: list[str]


class VideoScanner:
    """Turns one video file into verdicts (frames, then metadata and subtitle cues) and
    per-file issues. Counts the videos whose frames could not be checked for lack of a
    detector, and says once that PyAV is missing."""

    def __init__(self, checker: FrameChecker) -> None:
        self.checker = checker
        self.unchecked = 0
        self._missing_av: str | None = None

    def warm_up(self) -> None:
        """Load the frame detector now, so a broken model fails before any report."""
        _ = self.checker.detector

    def scan(self, item: VideoItem, gate: Gate) -> tuple[list[Verdict], list[InputIssue], bool]:
        """(verdicts, issues, scanned) for one video file; ``scanned`` is False when nothing of
        it could be checked (not opened, or no frame decoded and no text found)."""
        if self._missing_av is not None:
            return [], [self._issue(item, "not scanned: the 'av' package is missing")], False
        try:
            reader = VideoReader(item.path, item.source)
        except MissingExtraError as exc:
            self._missing_av = str(exc)
            return [], [self._issue(item, f"not scanned: {exc}")], False
        except InputError as exc:
            return [], [self._issue(item, _strip_source(exc, item.source))], False
        except OSError as exc:
            return [], [self._issue(item, f"cannot open ({exc.strerror or exc})")], False
        issues: list[InputIssue] = []
        frames: _SampledFrames | None = None
        records: list[Record] = []
        with reader:
            if self.checker.configured:
                frames = self._frames(reader, item, issues)
            else:
                self.unchecked += 1
            if self.checker.policy.video.text:
                records = self._text(reader, item, issues)
        # the reader's notes (known once it is done) go to the video's first verdict
        verdicts: list[Verdict] = []
        if frames is not None:
            notes = [*frames.notes, *reader.notes]
            verdicts.append(self.checker.judge(*frames.data, notes=notes, baseline=gate.baseline))
        if records:
            extra = {} if verdicts else {0: reader.notes}
            verdicts.extend(gate.judge(records, extra))
        return verdicts, issues, bool(verdicts) or not issues

    @staticmethod
    def _issue(item: VideoItem, message: str) -> InputIssue:
        return InputIssue(item.source, message, kind=VIDEO_ERROR)

    def _frames(
        self, reader: VideoReader, item: VideoItem, issues: list[InputIssue]
    ) -> _SampledFrames | None:
        detector = self.checker.detector
        assert detector is not None
        size = detector.input_size
        wanted = self.checker.sample_times(reader.info.duration)
        times: list[float] = []
        shown: list[float] = []
        chunks: list[np.ndarray] = []
        batch: list[np.ndarray] = []
        frames = reader.frames(wanted, None if size is None else (size[1], size[0]))
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except Exception as exc:  # PyAV/FFmpeg errors on bad data: keep what was decoded
                reader.problems.append(f"decoding failed ({type(exc).__name__}: {exc})")
                break
            times.append(frame.time)
            shown.append(frame.duration)
            batch.append(frame.image)
            if len(batch) == FRAME_BATCH:
                chunks.append(self.checker.score(np.stack(batch)))
                batch = []
        if batch:
            chunks.append(self.checker.score(np.stack(batch)))
        if not times:
            problem = "; ".join(reader.problems) or "no frame could be decoded"
            issues.append(self._issue(item, f"no frame could be scanned: {problem}"))
            return None
        if reader.problems:
            issues.append(
                self._issue(
                    item,
                    f"scanned in part ({len(times)} of {len(wanted)} sampled frames): "
                    + "; ".join(reader.problems),
                )
            )
        record = Record(
            text=frames_text(len(times), reader.info.duration),
            source=item.source,
            media=MediaRef("frames", frames=len(times), duration_s=reader.info.duration),
            key=_file_key_or_none(item.path),
        )
        return _SampledFrames(
            (record, np.asarray(times), np.asarray(shown), np.concatenate(chunks)),
            [f"scanned in part: {p}" for p in reader.problems],
        )

    def _text(self, reader: VideoReader, item: VideoItem, issues: list[InputIssue]) -> list[Record]:
        try:
            parts = reader.text_parts()
        except Exception as exc:  # PyAV/FFmpeg errors on bad data
            issues.append(self._issue(item, f"text side not read ({type(exc).__name__}: {exc})"))
            return []
        records = []
        for part in parts:
            record = make_record(part.text, item.source, 0)
            record.media = MediaRef(part.part, part.start_s, part.end_s, part.stream)
            records.append(record)
        return records

    def note(self) -> str | None:
        """The run-level note when some videos' frames were not checked."""
        return NO_FRAME_DETECTOR.format(n=self.unchecked) if self.unchecked else None


def _file_key_or_none(path: Path) -> str | None:
    try:
        return file_key(path)
    except OSError:
        return None


def _strip_source(exc: Exception, source: str) -> str:
    """An ``InputError`` message without its leading ``source: `` (issues print it)."""
    text = str(exc)
    return text[len(source) + 2 :] if text.startswith(f"{source}: ") else text
