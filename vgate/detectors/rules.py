"""Rules detector: per-category terms and regular expressions from the policy."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from vgate.categories import CATEGORY_IDS
from vgate.detectors.base import Detection
from vgate.policy import Policy
from vgate.policy.terms import canonical, terms_regex


class RulesDetector:
    """Score 1.0 for a category when any of its terms or patterns matches, else 0.0.

    Texts are matched in their ``canonical`` form. (Allow-list phrases are blanked out by the
    gate before any detector sees the text: ``Policy.mask_allowed``.)
    """

    name = "rules"

    def __init__(self, policy: Policy) -> None:
        # Per category: one alternation of its terms, then each pattern compiled on its own as
        # policy validation compiles it (a pattern's inline flags, group names and backreferences
        # would break or change meaning inside a joined alternation).
        self._matchers: list[list[re.Pattern[str]]] = []
        for cid in CATEGORY_IDS:
            cp = policy.categories[cid]
            terms = terms_regex(cp.terms)
            patterns = [re.compile(p, re.IGNORECASE) for p in cp.patterns]
            self._matchers.append([terms, *patterns] if terms else patterns)

    def detect(self, texts: Sequence[str]) -> Detection:
        scores = np.zeros((len(texts), len(CATEGORY_IDS)), dtype=np.float32)
        evidence: dict[int, dict[str, list[str]]] = {}
        for i, text in enumerate(texts):
            text = canonical(text)
            for j, matchers in enumerate(self._matchers):
                found = sorted({m.group(0).lower() for rx in matchers for m in rx.finditer(text)})
                if found:
                    scores[i, j] = 1.0
                    evidence.setdefault(i, {})[CATEGORY_IDS[j]] = found
        return Detection(scores=scores, evidence=evidence)
