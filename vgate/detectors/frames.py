"""The frame-detector interface: a batch of RGB frames to ``scores[n, 5]``, like prompts.

A frame detector has a ``name``, an optional fixed ``input_size`` (height, width) that the video
reader scales frames to while decoding, and ``detect_frames``. ``load_frame_detector`` resolves
the ``--frame-model`` / ``video.frame_model`` reference.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from vgate.detectors.base import Detection
from vgate.errors import VgateError

NUDENET = "nudenet"
"""``--frame-model nudenet``: the optional NudeNet detector (installed by the user)."""


class FrameDetector(Protocol):
    """Scores frames: uint8 ``[n, H, W, 3]`` RGB -> ``Detection`` with ``scores`` ``[n, 5]``."""

    name: str
    input_size: tuple[int, int] | None
    """(height, width) the detector wants, or None for any size."""

    def detect_frames(self, frames: np.ndarray) -> Detection:
        """Score a batch of frames."""
        ...


def load_frame_detector(ref: str, labels: str | None) -> FrameDetector:
    """``nudenet`` or a path to an ONNX classifier with its ``labels`` YAML."""
    if ref == NUDENET:
        from vgate.detectors.nudenet import NudeNetDetector

        return NudeNetDetector()
    if labels is None:
        raise VgateError(
            f"frame model {ref}: needs a labels file (--labels labels.yaml or video.labels) "
            "that maps its outputs to the categories"
        )
    from vgate.detectors.frame_model import OnnxFrameDetector

    return OnnxFrameDetector(ref, labels)


def _axis_weights(size: int, out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices (low, high) and weights of high for linear resampling along one axis."""
    centers = (np.arange(out, dtype=np.float64) + 0.5) * size / out - 0.5
    centers = np.clip(centers, 0, size - 1)
    low = np.floor(centers).astype(np.intp)
    high = np.minimum(low + 1, size - 1)
    return low, high, (centers - low).astype(np.float32)


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Frames ``[n, H, W, C]`` uint8 resized to ``size`` = (height, width): box-averaged down
    by whole factors first (no aliasing on big reductions), then bilinear."""
    height, width = size
    n, h, w, c = frames.shape
    if (h, w) == (height, width):
        return frames
    fy, fx = max(1, h // (2 * height)), max(1, w // (2 * width))
    data = frames.astype(np.float32)
    if fy > 1 or fx > 1:
        h2, w2 = h // fy * fy, w // fx * fx
        data = data[:, :h2, :w2].reshape(n, h2 // fy, fy, w2 // fx, fx, c).mean(axis=(2, 4))
        h, w = h2 // fy, w2 // fx
    y0, y1, wy = _axis_weights(h, height)
    x0, x1, wx = _axis_weights(w, width)
    rows = data[:, y0] * (1 - wy)[None, :, None, None] + data[:, y1] * wy[None, :, None, None]
    out = rows[:, :, x0] * (1 - wx)[None, None, :, None] + rows[:, :, x1] * wx[None, None, :, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
