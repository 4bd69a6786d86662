"""Rules detector: whole-word terms, wildcards, phrases, patterns, allow-list, evidence."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import write
from vgate.categories import CATEGORY_IDS
from vgate.core.gate import Gate
from vgate.detectors.rules import RulesDetector
from vgate.policy import Policy, load_policy
from vgate.policy.terms import canonical, term_regex


@pytest.fixture(scope="module")
def default_rules() -> RulesDetector:
    return RulesDetector(load_policy("default"))


def make_policy(
    tmp_path: Path, categories: dict[str, Any], allow: dict[str, Any] | None = None
) -> Policy:
    data: dict[str, Any] = {"version": 1, "detectors": ["rules"], "categories": categories}
    if allow:
        data["allow"] = allow
    return load_policy(write(tmp_path / "p.yaml", yaml.safe_dump(data)))


def make_rules(tmp_path: Path, categories: dict[str, Any]) -> RulesDetector:
    return RulesDetector(make_policy(tmp_path, categories))


def hit_categories(detector: RulesDetector | Gate, text: str) -> set[str]:
    """Categories scored above 0; a Gate also blanks out the policy's allow-list phrases."""
    if isinstance(detector, Gate):
        scores = detector.scores([text])[0]
    else:
        scores = detector.detect([text]).scores[0]
    return {c for c, s in zip(CATEGORY_IDS, scores, strict=True) if s > 0}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a cat on a skateboard", set()),
        ("Blood everywhere!", {"violent_bloody"}),
        ("(blood)", {"violent_bloody"}),
        ("bloodhound puppy", set()),  # not inside a longer word
        ("lifeblood of the city", set()),
        ("NUDITY", {"pornographic"}),
        ("pornography", {"pornographic"}),  # porn* wildcard
        ("a dead\n  body", {"violent_bloody"}),  # phrase across whitespace
        ("dead-body", {"violent_bloody"}),  # and punctuation
        ("deadbody", set()),
        ("a zombie horde in a nightmare", {"terrifying"}),
        ("nazi propaganda with blood", {"political", "violent_bloody"}),
    ],
)
def test_default_terms(default_rules: RulesDetector, text: str, expected: set[str]) -> None:
    assert hit_categories(default_rules, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fresh blood orange juice", set()),
        ("Blood Oranges at the market", set()),
        ("a blood moon over the sea", set()),
        ("blood orange and blood on the floor", {"violent_bloody"}),
        ("a killer whale", set()),
        ("a bloody mary cocktail", set()),
    ],
)
def test_allow_phrases_blank_out_terms(text: str, expected: set[str]) -> None:
    assert hit_categories(Gate("default", detectors="rules"), text) == expected


def test_scores_and_evidence(default_rules: RulesDetector) -> None:
    texts = ["a cat", "Blood and GORE, more blood", "nude"]
    detection = default_rules.detect(texts)
    assert detection.scores.dtype == np.float32 and detection.scores.shape == (3, 5)
    assert set(np.unique(detection.scores)) <= {0.0, 1.0}
    assert 0 not in detection.evidence
    assert detection.evidence[1] == {"violent_bloody": ["blood", "gore"]}
    assert detection.evidence[2] == {"pornographic": ["nude"]}
    assert default_rules.detect([]).scores.shape == (0, 5)


@pytest.mark.parametrize(
    "text",
    ["ｎｕｄｅ beach", "nu\u200bde beach", "ＢＬＯＯＤ", "n\u00adude"],
    ids=["fullwidth", "zero-width-space", "fullwidth-upper", "soft-hyphen"],
)
def test_lookalike_text_does_not_slip_past_terms(default_rules: RulesDetector, text: str) -> None:
    assert hit_categories(default_rules, text), canonical(text)


def test_patterns_keep_their_own_flags_groups_and_backreferences(tmp_path: Path) -> None:
    detector = make_rules(
        tmp_path,
        {
            "political": {"patterns": ["(?i)vote\\s+(?P<n>\\d+)", "(?P<n>x)yz"]},
            "violent_bloody": {"terms": ["stab"], "patterns": [r"\b(\w+) \1 \1\b"]},
        },
    )
    assert hit_categories(detector, "VOTE 12") == {"political"}
    assert hit_categories(detector, "xyz") == {"political"}
    assert hit_categories(detector, "kill kill kill") == {"violent_bloody"}
    assert hit_categories(detector, "stab") == {"violent_bloody"}
    assert hit_categories(detector, "kill kill") == set()
    assert detector.detect(["run run run"]).evidence[0] == {"violent_bloody": ["run run run"]}


def test_terms_with_punctuation_at_the_edges(tmp_path: Path) -> None:
    detector = make_rules(tmp_path, {"political": {"terms": ["c++", "r.i.p.", "#tag"]}})
    assert hit_categories(detector, "I write c++ code") == {"political"}
    assert hit_categories(detector, "r.i.p. old friend") == {"political"}
    assert hit_categories(detector, "post #tag now") == {"political"}
    assert hit_categories(detector, "abc++ code") == set()


def test_category_without_terms_never_hits(tmp_path: Path) -> None:
    detector = make_rules(tmp_path, {c: {"terms": []} for c in CATEGORY_IDS})
    assert not detector.detect(["blood nude nazi zombie deformed"]).scores.any()


def test_allow_phrase_with_custom_policy(tmp_path: Path) -> None:
    policy = make_policy(
        tmp_path,
        {"violent_bloody": {"terms": ["shot*"]}},
        allow={"phrases": ["shot glass"]},
    )
    detector = Gate(policy)
    assert hit_categories(detector, "a tequila shot glass") == set()
    assert hit_categories(detector, "shots fired") == {"violent_bloody"}


# --- term_regex properties ---------------------------------------------------------------------

_WORD = st.text(st.characters(categories=("L", "N")), min_size=1, max_size=8)
_PUNCT = st.text(st.sampled_from(list(" \t\n.,;:!?()[]\"'-/…")), min_size=1, max_size=3)


def _is_word_char(ch: str) -> bool:
    return re.match(r"\w", ch) is not None


@settings(max_examples=150, deadline=None)
@given(
    words=st.lists(_WORD, min_size=1, max_size=3),
    before=_PUNCT,
    after=_PUNCT,
    sep=_PUNCT,
    prefix=st.text(max_size=10),
    suffix=st.text(max_size=10),
)
def test_term_regex_matches_the_term_among_punctuation(
    words: list[str], before: str, after: str, sep: str, prefix: str, suffix: str
) -> None:
    term = " ".join(words)
    rx = re.compile(term_regex(term), re.IGNORECASE)
    written = sep.join(words)  # any non-word separator stands for the spaces of a phrase
    text = f"{prefix}{before}{written}{after}{suffix}"
    start = len(prefix) + len(before)
    match = rx.match(text, start)
    assert match is not None and match.group(0) == written
    assert rx.search(text) is not None
    wild = re.compile(term_regex(term + "*"), re.IGNORECASE)
    match = wild.match(f"{before}{written}ing{after}", len(before))
    assert match is not None and match.group(0) == f"{written}ing"


@settings(max_examples=150, deadline=None)
@given(
    words=st.lists(_WORD, min_size=1, max_size=3),
    left=st.text(st.characters(categories=("L", "N")), max_size=3),
    right=st.text(st.characters(categories=("L", "N")), max_size=3),
)
def test_term_regex_does_not_match_inside_a_longer_word(
    words: list[str], left: str, right: str
) -> None:
    term = " ".join(words)
    text = left + " ".join(words) + right
    rx = re.compile(term_regex(term))
    match = rx.search(text)
    if left or right:
        # every match must be a whole word: no word character touches either end
        for m in rx.finditer(text):
            assert m.start() == 0 or not _is_word_char(text[m.start() - 1])
            assert m.end() == len(text) or not _is_word_char(text[m.end()])
    else:
        assert match is not None and match.group(0) == text
    if left:
        assert rx.match(text) is None


def test_term_regex_examples() -> None:
    assert re.fullmatch(term_regex("nud*"), "nudity")
    assert not re.search(term_regex("nud*"), "denude")
    assert re.search(term_regex("dead body"), "dead_body")  # underscore separates words
    assert re.search(term_regex("Blood"), "BLOOD!", re.IGNORECASE)
