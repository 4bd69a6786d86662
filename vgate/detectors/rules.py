"""Rules detector: per-category terms and regular expressions from the policy."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from vgate.categories import CATEGORY_IDS
from vgate.detectors.base import Detection
from vgate.policy import Policy
from vgate.policy.patterns import UserPattern
from vgate.policy.terms import canonical, terms_regex
from vgate.text.normalize import fold_leet, normalize

DEOBFUSCATED_NOTE = (
    "obfuscation: rule terms matched only once the text was normalised (look-alike letters, "
    "invisible characters, spaced-out letters or leetspeak)"
)


def text_variants(text: str) -> list[str]:
    """The readings of ``text`` the rules are matched against: the text itself (NFKC without
    invisible characters), its ``normalize``-d form and that form with leetspeak folded (``1``
    read as ``i`` and as ``l``); duplicates dropped, the text itself first."""
    plain = canonical(text)
    normal = normalize(text)
    leet = fold_leet(normal, "i")
    ell = fold_leet(normal, "l") if leet != normal and "1" in normal else leet
    return list(dict.fromkeys((plain, normal, leet, ell)))


class RulesDetector:
    """Score 1.0 for a category when any of its terms or patterns matches, else 0.0.

    Every reading of the text (``text_variants``) is matched, so obfuscation does not hide a
    term. The policy's allow-list phrases waive only the matches that lie wholly inside an
    allowed phrase: ``shooting star`` waives ``shooting``, never ``school shooting`` in
    ``school shooting star``. ``blank_allowed`` gives the other detectors the text with the
    uncontested allowed phrases blanked out.
    """

    name = "rules"
    reads_variants = True
    """The gate need not score normalised texts again: ``detect`` reads every variant."""

    def __init__(self, policy: Policy) -> None:
        # Per category: one alternation of its terms (escaped by vgate, safe for ``re``), then
        # each user pattern compiled on its own by RE2 as policy validation compiles it (a
        # pattern's inline flags and group names would change meaning in a joined alternation).
        self._matchers: list[list[re.Pattern[str] | UserPattern]] = []
        for cid in CATEGORY_IDS:
            cp = policy.categories[cid]
            terms = terms_regex(cp.terms)
            patterns: list[re.Pattern[str] | UserPattern] = [UserPattern(p) for p in cp.patterns]
            self._matchers.append([terms, *patterns] if terms else patterns)
        self._allow = terms_regex(policy.allow_phrases)

    def _allowed(self, text: str) -> list[tuple[int, int]]:
        """The spans of the allowed phrases in ``text``."""
        return [m.span() for m in self._allow.finditer(text)] if self._allow else []

    def _standing(self, text: str, allowed: list[tuple[int, int]]) -> list[list[re.Match[str]]]:
        """Per category, the matches in ``text`` that no allowed span covers wholly."""
        return [
            [
                m
                for rx in matchers
                for m in rx.finditer(text)
                if not any(a <= m.start() and m.end() <= b for a, b in allowed)
            ]
            for matchers in self._matchers
        ]

    def _matches(self, text: str) -> list[set[str]]:
        """Per category, the matched words in ``text`` that no allowed phrase covers."""
        found = self._standing(text, self._allowed(text))
        return [{m.group(0).lower() for m in matches} for matches in found]

    def blank_allowed(self, text: str) -> str:
        """``text`` as the other detectors read it: each allowed phrase blanked out, unless a
        standing match reaches into it (``school shooting`` in ``school shooting star``), so that
        a phrase never hides the words around it."""
        if self._allow is None:
            return text
        plain = canonical(text)
        allowed = self._allowed(plain)
        if not allowed:
            return text
        contested = [m.span() for found in self._standing(plain, allowed) for m in found]
        blanked = [(a, b) for a, b in allowed if not any(s < b and a < e for s, e in contested)]
        if not blanked:
            return text
        parts, last = [], 0
        for a, b in blanked:
            parts += [plain[last:a], " "]
            last = b
        return "".join([*parts, plain[last:]])

    def detect(self, texts: Sequence[str]) -> Detection:
        scores = np.zeros((len(texts), len(CATEGORY_IDS)), dtype=np.float32)
        evidence: dict[int, dict[str, list[str]]] = {}
        notes: dict[int, list[str]] = {}
        for i, text in enumerate(texts):
            plain, *others = text_variants(text)
            found = self._matches(plain)
            direct = any(found)
            for other in others:
                for hits, more in zip(found, self._matches(other), strict=True):
                    hits |= more
            for j, hits in enumerate(found):
                if hits:
                    scores[i, j] = 1.0
                    evidence.setdefault(i, {})[CATEGORY_IDS[j]] = sorted(hits)
            if not direct and i in evidence:
                notes[i] = [DEOBFUSCATED_NOTE]
        return Detection(scores=scores, evidence=evidence, notes=notes)
