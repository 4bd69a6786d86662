"""The frame-detector interface: a batch of RGB frames to ``scores[n, 5]``, like prompts.

A frame detector has a ``name``, an optional fixed ``input_size`` (height, width) that the video
reader scales frames to while decoding, and ``detect_frames``. ``load_frame_detector`` resolves
the ``--frame-model`` / ``video.frame_model`` reference: a name in ``FRAME_DETECTORS`` (one line
per named detector), else a path to an ONNX classifier with its labels YAML.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from vgate.detectors.base import Detection
from vgate.errors import VgateError


class FrameDetector(Protocol):
    """Scores frames: uint8 ``[n, H, W, 3]`` RGB -> ``Detection`` with ``scores`` ``[n, 5]``."""

    name: str
    input_size: tuple[int, int] | None
    """(height, width) the detector wants, or None for any size."""

    def detect_frames(self, frames: np.ndarray) -> Detection:
        """Score a batch of frames."""
        ...


def _nudenet() -> FrameDetector:
    from vgate.detectors.nudenet import NudeNetDetector

    return NudeNetDetector()


FRAME_DETECTORS: dict[str, Callable[[], FrameDetector]] = {
    "nudenet": _nudenet,  # the optional NudeNet detector (installed by the user)
}
"""Frame detectors by name; any other ``--frame-model`` is a path to an ONNX classifier."""


def load_frame_detector(ref: str, labels: str | None) -> FrameDetector:
    """A detector named in ``FRAME_DETECTORS``, or a path to an ONNX classifier with its
    ``labels`` YAML."""
    factory = FRAME_DETECTORS.get(ref)
    if factory is not None:
        return factory()
    if labels is None:
        raise VgateError(
            f"frame model {ref}: needs a labels file (--labels labels.yaml or video.labels) "
            "that maps its outputs to the categories"
        )
    from vgate.detectors.frame_model import OnnxFrameDetector

    return OnnxFrameDetector(ref, labels)
