"""Optional NudeNet detector (``--frame-model nudenet``), used only when the user installed it.

vgate does not depend on, bundle or download NudeNet: the ``nudenet`` wheel (3.4.2) declares an
MIT licence in its metadata but ships the AGPL-3.0 text as its licence files, together with its
ONNX weights. Check that licence for your use before installing it (``pip install nudenet``).

NudeNet detects exposed and covered body parts; vgate maps the *exposed* genitalia, breast,
buttocks and anus classes to ``pornographic`` (the highest box score per frame). Nudity is a
proxy, not the study's category: expect false positives on medical, artistic or beach footage,
and no signal for the other four categories.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vgate.categories import CATEGORY_IDS
from vgate.detectors.base import Detection
from vgate.errors import VgateError

PORN_CLASSES = frozenset(
    {
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "FEMALE_BREAST_EXPOSED",
        "BUTTOCKS_EXPOSED",
        "ANUS_EXPOSED",
    }
)
INSTALL_HINT = (
    "--frame-model nudenet needs the 'nudenet' package, which vgate does not install: its wheel "
    "ships AGPL-3.0 licence files; check the licence, then: pip install nudenet"
)
BATCH_SIZE = 8


class NudeNetDetector:
    """NudeNet's ``NudeDetector`` behind the frame-detector interface."""

    name = "nudenet"
    input_size: tuple[int, int] | None = None

    def __init__(self) -> None:
        try:
            from nudenet import NudeDetector
        except ImportError:
            raise VgateError(INSTALL_HINT) from None
        self._detector: Any = NudeDetector()

    def detect_frames(self, frames: np.ndarray) -> Detection:
        """Pornographic = the highest score of an exposed-nudity box in each frame."""
        column = CATEGORY_IDS.index("pornographic")
        scores = np.zeros((len(frames), len(CATEGORY_IDS)), dtype=np.float32)
        bgr = [np.ascontiguousarray(frame[..., ::-1]) for frame in frames]  # as cv2.imread gives
        results = self._detector.detect_batch(bgr, batch_size=BATCH_SIZE)
        for i, boxes in enumerate(results):
            found = [float(b["score"]) for b in boxes if b.get("class") in PORN_CLASSES]
            scores[i, column] = max(found, default=0.0)
        return Detection(np.clip(scores, 0.0, 1.0))
