"""The text normaliser: obfuscation undone before any detector, and never a crash."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vgate.detectors.rules import RulesDetector, text_variants
from vgate.policy import load_policy
from vgate.text.confusables import CONFUSABLES
from vgate.text.normalize import fold_leet, normalize

OBFUSCATED = {
    "spaced": "a n a k e d woman",
    "dotted": "n.a.k.e.d woman",
    "dashed": "n-a-k-e-d woman",
    "homoglyph": "a n\u0430k\u0435d woman",  # Cyrillic а, е
    "greek": "a n\u03b1k\u03b5d woman",
    "fullwidth": "a ｎａｋｅｄ woman",
    "math-bold": "a 𝐧𝐚𝐤𝐞𝐝 woman",
    "small-caps": "a ɴᴀᴋᴇᴅ woman",
    "combining": "a n\u0336a\u0336k\u0336e\u0336d\u0336 woman",
    "zalgo": "a n\u0301\u0316a\u0300k\u0330e\u0303d woman",
    "zero-width": "a na\u200bk\u200ded woman",
    "variation-selector": "a na\ufe0fke\ufe0fd woman",
    "tag-chars": "a na\U000e0041ked\U000e007f woman",
    "bidi-controls": "a na\u202eke\u202cd woman",
    "soft-hyphen": "a na\u00adked woman",
    "control-char": "a na\x01ke\x7fd woman",
}


@pytest.mark.parametrize("text", OBFUSCATED.values(), ids=OBFUSCATED.keys())
def test_obfuscations_normalise_to_the_plain_word(text: str) -> None:
    assert "naked" in normalize(text).lower().split()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("n4k3d", "naked"),
        ("p0rn", "porn"),
        ("g0r3", "gore"),
        ("s3x!", "sex!"),
        ("a$$", "ass"),
        ("scene 2024, 16:9", "scene 2024, 16:9"),  # numbers on their own stay
        ("3d render in 4k, 1080p", "3d render in 4k, 1080p"),  # a number with a unit
        ("5ex", "sex"),
        # other words with letters and digits are read as leet: only the rules read this form
        ("mp4 x264", "mpa x26a"),
    ],
)
def test_fold_leet(text: str, expected: str) -> None:
    assert fold_leet(text) == expected


def test_fold_leet_reads_1_as_i_or_l() -> None:
    assert fold_leet("k1ll", "i") == "kill" and fold_leet("b100d", "l") == "blood"


@pytest.mark.parametrize(
    "text",
    [
        "a cat on a skateboard, 4k, highly detailed",
        "U2 concert at 8 pm",
        "a b",  # two single letters are not a spelled-out word
        "привет мир",  # Cyrillic words without a look-alike-only spelling stay Cyrillic
        "नमस्ते दुनिया",  # marks on other scripts stay
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert normalize(text) == text


def test_accents_and_other_scripts() -> None:
    assert normalize("café crème") == "cafe creme"
    assert normalize("сорок") == "copok"  # a word made only of look-alikes is folded


def test_rules_match_every_variant_and_say_so(tmp_path) -> None:
    rules = RulesDetector(load_policy("default"))
    detection = rules.detect([*OBFUSCATED.values(), "n4k3d woman", "a naked woman", "a cat"])
    pornographic = detection.scores[:, 2]
    assert pornographic.tolist() == [1.0] * (len(OBFUSCATED) + 2) + [0.0]
    assert detection.evidence[0] == {"pornographic": ["naked"]}
    assert "obfuscation" in detection.notes[0][0]
    assert len(OBFUSCATED) + 1 not in detection.notes  # a plain match needs no note


def test_text_variants_start_with_the_text_and_have_no_duplicates() -> None:
    assert text_variants("a cat") == ["a cat"]
    variants = text_variants("b1ood n a k e d")
    assert variants[0] == "b1ood n a k e d" and "blood naked" in variants
    assert len(variants) == len(set(variants))


# --- properties ----------------------------------------------------------------------------------

_TRICKS = st.sampled_from(
    ["\u200b", "\u200d", "\ufe0f", "\U000e0041", "\u202e", "\u00ad", "\x00", "\x1b", "\u0301",
     "\u0336", "\u0430", "\u03bf", "ｎ", "𝐚", " ", ".", "-", "\t", "\r\n", "a", "n", "1", "4",
     "\ud800", "\U0010ffff", "ß", "ﬁ", "ǅ", "\u0345", "\u1e9b\u0323", "a ", "i "]
)  # fmt: skip
_TEXT = st.one_of(
    st.text(max_size=80),
    st.text(st.characters(codec=None), max_size=40),
    st.lists(_TRICKS, max_size=40).map("".join),
)


@settings(max_examples=400, deadline=None)
@given(_TEXT)
def test_normalize_is_idempotent_total_and_leaves_no_invisible_characters(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once
    for ch in once:
        category = unicodedata.category(ch)
        assert category not in ("Cc", "Cf", "Cs", "Co"), ascii(ch)
        assert not 0xFE00 <= ord(ch) <= 0xFE0F and not 0xE0000 <= ord(ch) <= 0xE0FFF
    assert not any(ord(ch) in CONFUSABLES and ch.isascii() for ch in once)


@settings(max_examples=200, deadline=None)
@given(_TEXT, st.sampled_from(["i", "l"]))
def test_fold_leet_is_idempotent_and_keeps_words_without_digits(text: str, one: str) -> None:
    folded = fold_leet(text, one)
    assert fold_leet(folded, one) == folded
    if not any(ch in "0123456789@$!|" for ch in text):
        assert folded == text


@settings(max_examples=200, deadline=None)
@given(_TEXT)
def test_rules_never_raise_on_any_text(text: str) -> None:
    detection = RulesDetector(load_policy("default")).detect([text])
    assert detection.scores.shape == (1, 5)
