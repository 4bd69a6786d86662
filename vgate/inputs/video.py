"""Video files: probing, frame sampling with seeks, and the text side (metadata, subtitles).

PyAV (the ``video`` extra) is imported when a video is opened, never when this module is
imported. Only the sampled frames are converted to pixels: the reader seeks to the keyframe
before a sample when that saves decoding, and otherwise decodes forward (see ``frames``).
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from vgate.errors import InputError, MissingExtraError

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".gif", ".avi")
MAX_SAMPLES = 10_000
"""Most frames sampled from one video (``--fps`` on a long video is capped to this)."""
MAX_PIXELS = 100_000_000
"""Larger pictures (about 10,000 x 10,000) are refused rather than decoded."""
MAX_SIDE = 512
"""Without a detector input size, frames are downscaled so their longest side is at most this."""
TEXT_METADATA_KEYS = ("title", "description", "comment", "synopsis")
"""Container metadata fields scanned as text (keys compared case-insensitively)."""
MAX_BAD_PACKETS = 20
"""Undecodable packets tolerated in one video before decoding stops."""
_ASS_TAGS = re.compile(r"\{[^}]*\}")
_ASS_BREAKS = re.compile(r"\\[Nnh]")


@dataclass(frozen=True)
class VideoItem:
    """A video file to scan: what ``iter_inputs`` yields for a path with a video extension."""

    source: str
    path: Path


@dataclass
class VideoInfo:
    """What the container says about the video stream."""

    duration: float
    width: int
    height: int
    codec: str
    fps: float | None
    container: str


@dataclass
class SampledFrame:
    """One decoded frame: its presentation time from the start of the video, how long it is
    shown, and its pixels (uint8 ``[H, W, 3]`` RGB)."""

    time: float
    duration: float
    image: np.ndarray


@dataclass
class TextPart:
    """A piece of a video's text side: a metadata field or one subtitle cue."""

    part: str
    """``metadata:<key>`` or ``subtitle``."""
    text: str
    start_s: float | None = None
    end_s: float | None = None
    stream: int | None = None


def is_video(path: Path) -> bool:
    """True when the file name has a video extension."""
    return path.suffix.lower() in VIDEO_EXTENSIONS


def import_av() -> ModuleType:
    """The ``av`` module, or ``MissingExtraError`` naming the ``video`` extra."""
    try:
        import av
    except ImportError:
        raise MissingExtraError("av", "video") from None
    return av


def sample_times(
    duration: float,
    *,
    frames: int | None = None,
    fps: float | None = None,
    max_frames: int = MAX_SAMPLES,
) -> list[float]:
    """Sample times in seconds, increasing, in ``[0, duration)``.

    ``fps``: one sample in the middle of every ``1/fps`` interval; otherwise ``frames`` samples
    in the middle of equal intervals. At least one sample, at most ``max_frames`` (uniform when
    ``fps`` would give more).
    """
    if duration <= 0 or not math.isfinite(duration):
        return []
    if fps is not None:
        count = max(1, math.floor(duration * fps + 1e-9))
        if count <= max_frames:
            if count == 1:
                return [min(0.5 / fps, duration / 2)]
            return [(i + 0.5) / fps for i in range(count)]
        frames = max_frames
    count = max(1, min(frames or 1, max_frames))
    step = duration / count
    return [(i + 0.5) * step for i in range(count)]


def _ffmpeg_message(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).strip().rstrip(".") or type(exc).__name__


def fit_size(width: int, height: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """(width, height) scaled down so that the longer side is at most ``max_side`` (even
    numbers, at least 2); unchanged when it already fits."""
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


class VideoReader:
    """One open video file. Raises ``InputError`` (naming the file) when it cannot be scanned.

    ``problems`` collects what went wrong while decoding (truncated or corrupt data); ``notes``
    collects remarks (bitmap subtitles, capped sampling).
    """

    def __init__(self, path: Path, source: str) -> None:
        self.av = import_av()
        self.path = path
        self.source = source
        self.problems: list[str] = []
        self.notes: list[str] = []
        self._bad_packets = 0
        if path.stat().st_size == 0:
            raise InputError(f"{source}: empty file (zero bytes), not a video")
        self._container = self._open()
        try:
            self.info = self._probe()
        except BaseException:
            self.close()
            raise

    def _open(self) -> Any:
        try:
            return self.av.open(str(self.path), mode="r")
        except self.av.FFmpegError as exc:
            if "end of file" in _ffmpeg_message(exc).lower():
                raise InputError(
                    f"{self.source}: no video data (zero-length, truncated or not a video)"
                ) from None
            raise InputError(
                f"{self.source}: not a readable video ({_ffmpeg_message(exc)}); "
                "truncated, corrupt or not a video file"
            ) from None

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _probe(self) -> VideoInfo:
        container = self._container
        streams = container.streams
        if not streams:
            raise InputError(f"{self.source}: no streams (zero-length video?); nothing to scan")
        if not streams.video:
            if streams.audio:
                raise InputError(f"{self.source}: no video stream (audio only); nothing to scan")
            raise InputError(f"{self.source}: no video stream; nothing to scan")
        stream = streams.video[0]
        self._stream = stream
        if stream.codec_context is None:
            raise InputError(
                f"{self.source}: unsupported or unknown video codec; this FFmpeg build cannot "
                "decode it (re-encode to H.264, VP9 or AV1)"
            )
        width, height = stream.codec_context.width, stream.codec_context.height
        if width <= 0 or height <= 0:
            raise InputError(f"{self.source}: the video stream has no picture size (corrupt?)")
        if width * height > MAX_PIXELS:
            raise InputError(
                f"{self.source}: resolution {width}x{height} is over the "
                f"{MAX_PIXELS // 1_000_000} megapixel limit; downscale the video first"
            )
        self._origin = self._start_time()
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else None
        duration = self._duration()
        if duration <= 0:
            raise InputError(f"{self.source}: zero-length video (no frames); nothing to scan")
        self._frame_step = 1 / fps if fps else 0.04
        self._seekable = True
        return VideoInfo(
            duration=duration,
            width=width,
            height=height,
            codec=stream.codec_context.name,
            fps=fps,
            container=container.format.name,
        )

    def _start_time(self) -> float:
        if self._container.start_time is not None:
            return self._container.start_time / 1_000_000
        stream = self._stream
        if stream.start_time is not None and stream.time_base:
            return float(stream.start_time * stream.time_base)
        return 0.0

    def _duration(self) -> float:
        """Duration from the stream or container header, else from the packets' timestamps."""
        stream = self._stream
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        if self._container.duration:
            return self._container.duration / 1_000_000
        end = 0.0
        try:
            for packet in self._container.demux(stream):
                if packet.pts is not None and packet.time_base:
                    length = float((packet.duration or 0) * packet.time_base)
                    end = max(end, float(packet.pts * packet.time_base) - self._origin + length)
        except self.av.FFmpegError:
            pass
        self._rewind()
        return end

    def _rewind(self) -> None:
        try:
            self._container.seek(0)
        except self.av.FFmpegError:
            self._container.close()
            self._container = self._open()
            self._stream = self._container.streams.video[0]

    def _decoded(self) -> Iterator[Any]:
        """Decoded frames from the current position; corrupt packets are skipped (up to
        ``MAX_BAD_PACKETS``), a demuxing error ends the stream."""
        ffmpeg_error = self.av.FFmpegError
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except ffmpeg_error as exc:
                self.problems.append(f"reading stopped: {_ffmpeg_message(exc)}")
                return
            try:
                decoded = packet.decode()
            except ffmpeg_error as exc:
                self._bad_packets += 1
                if self._bad_packets >= MAX_BAD_PACKETS:
                    self.problems.append(
                        f"decoding stopped after {self._bad_packets} corrupt packets "
                        f"({_ffmpeg_message(exc)})"
                    )
                    return
                continue
            yield from decoded

    def _keyframes(self) -> list[float]:
        """Presentation times of the keyframes, from one pass over the packets (no decoding);
        empty when the packets cannot be read (the reader then decodes forward only)."""
        times: list[float] = []
        try:
            for packet in self._container.demux(self._stream):
                if packet.is_keyframe and packet.pts is not None and packet.time_base:
                    times.append(float(packet.pts * packet.time_base) - self._origin)
        except self.av.FFmpegError:
            times = []
        self._rewind()
        return sorted(times)

    def _seek(self, seconds: float) -> bool:
        stream = self._stream
        target = int((seconds + self._origin) / stream.time_base)
        try:
            self._container.seek(target, stream=stream, backward=True, any_frame=False)
        except self.av.FFmpegError:
            self._seekable = False
            return False
        return True

    def _time(self, frame: Any, previous: float | None) -> float:
        if frame.time is not None:
            return float(frame.time) - self._origin
        return 0.0 if previous is None else previous + self._frame_step

    def _shown_for(self, frame: Any) -> float:
        if frame.duration and frame.time_base:
            return float(frame.duration * frame.time_base)
        return self._frame_step

    def frames(
        self, times: Sequence[float], size: tuple[int, int] | None = None
    ) -> Iterator[SampledFrame]:
        """The frame shown at each of ``times`` (seconds, increasing), as RGB pixels.

        ``size`` is (width, height) to scale to (the detector's input); without it frames are
        downscaled to at most ``MAX_SIDE`` pixels on the longer side. A frame shown at two
        sample times is returned once. The keyframes are listed first from the packets (no
        decoding); the reader seeks when the keyframe before a sample lies ahead of what it has
        decoded, and otherwise decodes forward, so each needed frame is decoded once. When the
        data ends before the declared duration (truncated file), a problem is noted and sampling
        stops.
        """
        width, height = size or fit_size(self.info.width, self.info.height)
        keys = self._keyframes() if self._seekable else []
        decoded = self._decoded()
        position = 0.0  # time of the last decoded frame (0 before the first)
        current: Any = None  # the last frame at or before the previous target
        current_time = -math.inf
        ahead: Any = None  # a frame decoded past the previous target
        yielded_time: float | None = None
        for target in times:
            # seek when the keyframe before the target lies ahead of the decoder
            index = bisect.bisect_right(keys, target + 1e-6) - 1
            if index >= 0 and keys[index] > position + 1e-6 and self._seek(target):
                decoded, current, ahead = self._decoded(), None, None
            candidate, candidate_time = current, current_time
            while True:
                frame = ahead if ahead is not None else next(decoded, None)
                ahead = None
                if frame is None:
                    break
                frame_time = self._time(frame, position)
                position = frame_time
                if frame_time <= target + 1e-6:
                    candidate, candidate_time = frame, frame_time
                    continue
                ahead = frame
                break
            if candidate is None and ahead is not None:  # nothing at or before: take the next
                candidate, candidate_time, ahead = ahead, self._time(ahead, None), None
            if candidate is None:
                self.problems.append(
                    f"no frame could be decoded at {target:.2f} s of a declared "
                    f"{self.info.duration:.2f} s (truncated or corrupt)"
                )
                return
            shown = self._shown_for(candidate)
            if ahead is None and target > candidate_time + max(shown, 0.1) + 1e-6:
                self.problems.append(
                    f"no frames after {candidate_time:.2f} s of a declared "
                    f"{self.info.duration:.2f} s (truncated or corrupt)"
                )
                return
            current, current_time = candidate, candidate_time
            if yielded_time is not None and abs(candidate_time - yielded_time) < 1e-9:
                continue
            yielded_time = candidate_time
            image = candidate.to_ndarray(
                format="rgb24", width=width, height=height, interpolation="AREA"
            )
            yield SampledFrame(candidate_time, shown, image)

    def text_parts(self) -> list[TextPart]:
        """Metadata fields (title, description, comment, synopsis) and subtitle cues."""
        parts = []
        metadata = {str(k).lower(): str(v) for k, v in self._container.metadata.items()}
        for key in TEXT_METADATA_KEYS:
            value = metadata.get(key, "").strip()
            if value:
                parts.append(TextPart(f"metadata:{key}", value))
        subtitles = list(self._container.streams.subtitles)
        if subtitles:
            parts.extend(self._subtitle_cues(subtitles))
        return parts

    def _subtitle_cues(self, streams: list[Any]) -> list[TextPart]:
        """Text cues of all subtitle streams (read in a second pass over the file)."""
        cues: list[TextPart] = []
        bitmap: set[int] = set()
        container = self._open()
        try:
            wanted = [container.streams.subtitles[i] for i in range(len(streams))]
            for packet in container.demux(wanted):
                if packet.size == 0 or packet.pts is None:
                    continue
                start = float(packet.pts * packet.time_base) - self._origin
                end = start + float((packet.duration or 0) * packet.time_base)
                try:
                    subtitles = packet.decode()
                except self.av.FFmpegError:
                    self.problems.append(f"a subtitle cue at {start:.2f} s could not be decoded")
                    continue
                for sub in subtitles:
                    text = _cue_text(sub)
                    if text is None:
                        bitmap.add(packet.stream.index)
                    elif text:
                        cues.append(TextPart("subtitle", text, start, end, packet.stream.index))
        except self.av.FFmpegError as exc:
            self.problems.append(f"reading subtitles stopped: {_ffmpeg_message(exc)}")
        finally:
            container.close()
        for index in sorted(bitmap):
            self.notes.append(f"subtitle stream {index} is bitmap (no text); not scanned")
        return cues


def _cue_text(sub: Any) -> str | None:
    """The plain text of one decoded subtitle (ASS tags and line breaks removed); None for a
    bitmap subtitle."""
    kind = getattr(sub, "type", b"")
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if "bitmap" in kind:
        return None
    raw = getattr(sub, "dialogue", None) or getattr(sub, "text", None) or b""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    text = _ASS_BREAKS.sub(" ", _ASS_TAGS.sub("", text))
    return " ".join(text.split())
