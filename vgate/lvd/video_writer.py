"""Write generated frames to a video file with PyAV."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np

from vgate.errors import MissingExtraError, VgateError

_CODECS = {
    ".mp4": ("libx264", "yuv420p"),
    ".mov": ("libx264", "yuv420p"),
    ".mkv": ("libx264", "yuv420p"),
    ".webm": ("libvpx-vp9", "yuv420p"),
    ".gif": ("gif", "rgb8"),
}
_FALLBACK = ("mpeg4", "yuv420p")


def as_uint8_frames(frames: np.ndarray) -> np.ndarray:
    """``[F, H, W, 3]`` uint8 from a pipeline's float frames in 0..1 (or uint8 as is)."""
    frames = np.asarray(frames)
    if frames.ndim == 5:  # [B, F, H, W, C]: the first video
        frames = frames[0]
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
        raise VgateError(f"cannot write frames of shape {frames.shape}; expected [F, H, W, 3]")
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    if frames.dtype != np.uint8:
        frames = (np.clip(frames, 0.0, 1.0) * 255).round().astype(np.uint8)
    return frames


def write_video(frames: np.ndarray, path: Path, fps: float = 8.0) -> Path:
    """Encode ``frames`` (``[F, H, W, 3]``) to ``path``; the codec follows the extension."""
    try:
        import av
    except ImportError:
        raise MissingExtraError("av", "generate") from None
    frames = as_uint8_frames(frames)
    suffix = Path(path).suffix.lower()
    if suffix not in _CODECS:
        raise VgateError(f"{path}: unsupported video extension; use one of {', '.join(_CODECS)}")
    codec, pix_fmt = _CODECS[suffix]
    if codec not in av.codecs_available:
        codec, pix_fmt = _FALLBACK
    height, width = frames.shape[1:3]
    if pix_fmt == "yuv420p":  # 4:2:0 needs even sizes
        frames = frames[:, : height - height % 2, : width - width % 2]
        height, width = frames.shape[1:3]
    try:
        with av.open(str(path), mode="w") as container:
            stream = cast("av.VideoStream", container.add_stream(codec, rate=max(1, round(fps))))
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            for frame in frames:
                image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                for packet in stream.encode(image):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    except (OSError, av.FFmpegError) as exc:
        raise VgateError(f"{path}: cannot write the video ({exc})") from None
    return Path(path)
