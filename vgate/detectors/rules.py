"""Rules detector: per-category terms and regular expressions from the policy."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from vgate.categories import CATEGORY_IDS
from vgate.detectors.base import Detection
from vgate.policy import Policy


def term_regex(term: str) -> str:
    """A whole-word regex for a term; spaces match any run of non-word characters and a
    trailing ``*`` matches any word ending (``nud*`` matches nude, nudity)."""
    stem, wildcard = (term[:-1], True) if term.endswith("*") else (term, False)
    words = [re.escape(w) for w in stem.split()]
    body = r"[\W_]+".join(words)
    return rf"\b{body}\w*" if wildcard else rf"\b{body}\b"


class RulesDetector:
    """Score 1.0 for a category when any of its terms or patterns matches, else 0.0.

    Phrases on the policy's allow-list are blanked out before matching, so ``blood orange``
    does not trip the term ``blood``.
    """

    name = "rules"

    def __init__(self, policy: Policy) -> None:
        self._matchers: list[re.Pattern[str] | None] = []
        for cid in CATEGORY_IDS:
            cp = policy.categories[cid]
            parts = [term_regex(t) for t in cp.terms] + [f"(?:{p})" for p in cp.patterns]
            self._matchers.append(re.compile("|".join(parts), re.IGNORECASE) if parts else None)
        allow = [term_regex(p) for p in policy.allow_phrases]
        self._allow = re.compile("|".join(allow), re.IGNORECASE) if allow else None

    def detect(self, texts: Sequence[str]) -> Detection:
        scores = np.zeros((len(texts), len(CATEGORY_IDS)), dtype=np.float32)
        evidence: dict[int, dict[str, list[str]]] = {}
        for i, text in enumerate(texts):
            if self._allow is not None:
                text = self._allow.sub(" ", text)
            for j, matcher in enumerate(self._matchers):
                if matcher is None:
                    continue
                found = sorted({m.group(0).lower() for m in matcher.finditer(text)})
                if found:
                    scores[i, j] = 1.0
                    evidence.setdefault(i, {})[CATEGORY_IDS[j]] = found
        return Detection(scores=scores, evidence=evidence)
