"""The small interface every detector implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass
class Detection:
    """What a detector says about a batch.

    ``scores`` is float32 ``[n, 5]`` in 0..1, columns in ``CATEGORY_IDS`` order.
    ``notes`` holds per-item remarks (e.g. ``{3: ["truncated to 256 tokens"]}``), sparse.
    ``evidence`` holds per-item, per-category reasons (e.g. matched rule terms), sparse.
    """

    scores: np.ndarray
    notes: dict[int, list[str]] = field(default_factory=dict)
    evidence: dict[int, dict[str, list[str]]] = field(default_factory=dict)


class Detector(Protocol):
    """A detector: a name used in reports and policies, and a batch scoring function."""

    name: str
    # A detector may set ``reads_variants = True`` when it matches normalised readings of the
    # text itself; otherwise the gate also scores each changed ``normalize``-d text with it.

    def detect(self, texts: Sequence[str]) -> Detection:
        """Score a batch of texts."""
        ...
