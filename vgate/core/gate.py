"""The gate: a policy and its detectors, turning batches of prompts into verdicts.

This is the one code path behind ``vgate scan`` and the Python API::

    from vgate.core.gate import Gate
    gate = Gate("default")
    gate.scores(["a cat on a skateboard"])   # float32 [n, 5]
    gate.scan(["a cat on a skateboard"])     # list of Verdict
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vgate.categories import CATEGORY_IDS
from vgate.core.findings import Baseline, Record, Verdict
from vgate.detectors import DETECTORS, make_detector
from vgate.detectors.base import Detection, Detector
from vgate.errors import VgateError
from vgate.inputs.prompts import MAX_PROMPT_CHARS, make_record
from vgate.policy import Policy, load_policy

NON_ENGLISH_NOTE = (
    "language: non-english (mostly non-ASCII letters; the model is trained on English prompts)"
)


def parse_detectors(spec: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"rules,model"``, ``"all"`` or a list -> detector names (None keeps the policy's)."""
    if spec is None:
        return None
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else list(spec)
    if names == ["all"]:
        return tuple(DETECTORS)
    unknown = [n for n in names if n not in DETECTORS]
    if unknown or not names:
        expected = ", ".join((*DETECTORS, "all"))
        raise VgateError(
            f"unknown detector {', '.join(unknown) or '(none)'!s}; expected {expected}"
        )
    return tuple(dict.fromkeys(names))


def mostly_non_ascii(text: str) -> bool:
    """True when most letters are outside ASCII (a cheap "not English" signal)."""
    if text.isascii():
        return False
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and sum(not ch.isascii() for ch in letters) * 2 > len(letters)


class Gate:
    """A policy with its detectors; detectors (and model sessions) load on first use."""

    def __init__(
        self,
        policy: Policy | str | Path = "default",
        *,
        detectors: str | Sequence[str] | None = None,
        model: str | None = None,
        baseline: Baseline | None = None,
    ) -> None:
        self.policy = policy if isinstance(policy, Policy) else load_policy(policy)
        self.baseline = baseline
        """Known (category, fingerprint) pairs: their hits are waived (``--baseline``)."""
        self.detector_names = parse_detectors(detectors) or self.policy.detectors
        self.model_ref = model or self.policy.model
        self._detectors: list[Detector] | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without loaded detectors: they reload in the receiving process."""
        return {**self.__dict__, "_detectors": None}

    @property
    def detectors(self) -> list[Detector]:
        if self._detectors is None:
            self._detectors = [
                make_detector(name, self.policy, self.model_ref) for name in self.detector_names
            ]
        return self._detectors

    def warm_up(self) -> None:
        """Load every detector now, so a broken model fails before any report is written."""
        self.detect([""])

    def detect(self, texts: Sequence[str]) -> tuple[np.ndarray, dict[str, Detection]]:
        """Combined scores ``[n, 5]`` (max over detectors) and each detector's detection."""
        texts = [self.policy.mask_allowed(t) for t in texts]
        detections = {det.name: det.detect(texts) for det in self.detectors}
        combined = np.zeros((len(texts), len(CATEGORY_IDS)), dtype=np.float32)
        for detection in detections.values():
            np.maximum(combined, detection.scores, out=combined)
        return combined, detections

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Combined scores ``[n, 5]`` in ``CATEGORY_IDS`` order."""
        return self.detect(texts)[0]

    def judge(
        self, records: Sequence[Record], extra_notes: Mapping[int, Sequence[str]] | None = None
    ) -> list[Verdict]:
        """Final verdicts for a batch of records, in order; ``extra_notes[i]`` are added to the
        notes of record ``i`` (e.g. what the video reader had to say)."""
        combined, detections = self.detect([r.text for r in records])
        verdicts = []
        for i, record in enumerate(records):
            per_detector = {name: d.scores[i] for name, d in detections.items()}
            evidence: dict[str, list[str]] = {}
            for d in detections.values():
                for cid, found in d.evidence.get(i, {}).items():
                    evidence.setdefault(cid, []).extend(found)
            notes = []
            if record.truncated:
                notes.append(f"input truncated to {MAX_PROMPT_CHARS} characters")
            for d in detections.values():
                notes.extend(d.notes.get(i, ()))
            if mostly_non_ascii(record.text):
                notes.append(NON_ENGLISH_NOTE)
            notes.extend((extra_notes or {}).get(i, ()))
            verdicts.append(
                self.policy.decide(
                    record, combined[i], per_detector, evidence, notes=notes, baseline=self.baseline
                )
            )
        return verdicts

    def scan(self, texts: Sequence[str]) -> list[Verdict]:
        """Verdicts for plain texts (location ``<api>``, line = position from 1)."""
        return self.judge([make_record(t, "<api>", i) for i, t in enumerate(texts, start=1)])
