"""Term matching shared by the rules detector and the policy allow-list."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u2060-\u2064\ufeff]")


def term_regex(term: str) -> str:
    """A whole-word regex for a term; spaces match any run of non-word characters and a
    trailing ``*`` matches any word ending (``nud*`` matches nude, nudity).

    "Whole word" means no word character right before or after the term, so terms that start or
    end with punctuation (``c++``, ``r.i.p.``) match as well; ``\\b`` would need a word character
    there and never match them.
    """
    return rf"(?<!\w){_term_body(term)}"


def _term_body(term: str) -> str:
    """``term_regex`` without its leading ``(?<!\\w)``, so that an alternation of many terms can
    share one (a lookbehind in every branch makes matching several times slower)."""
    stem, wildcard = (term[:-1], True) if term.endswith("*") else (term, False)
    body = r"[\W_]+".join(re.escape(w) for w in stem.split())
    return rf"{body}\w*" if wildcard else rf"{body}(?!\w)"


def terms_regex(terms: Sequence[str]) -> re.Pattern[str] | None:
    """One case-insensitive regex matching any of ``terms`` (as ``term_regex``), or None."""
    if not terms:
        return None
    return re.compile(rf"(?<!\w)(?:{'|'.join(_term_body(t) for t in terms)})", re.IGNORECASE)


def canonical(text: str) -> str:
    """NFKC without invisible format characters, so that full-width letters (``ｎｕｄｅ``) or a
    zero-width space inside a word (``nu\\u200bde``) do not slip past the terms."""
    return _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
