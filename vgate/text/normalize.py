"""Undo the tricks that hide words from the detectors, before any detector runs.

``normalize`` folds a prompt to the text a reader sees:

1. NFKC (full-width ``ｎａｋｅｄ``, mathematical ``𝐧𝐚𝐤𝐞𝐝``, circled and other compatibility
   forms become plain letters);
2. invisible characters are removed: format characters (zero-width spaces and joiners, bidi
   controls, the soft hyphen, tag characters), variation selectors, the combining grapheme
   joiner and control characters (tab and line breaks become spaces);
3. combining marks on Latin, Greek, Cyrillic and Armenian letters are dropped (``n̷a̷k̷e̷d̷``);
4. look-alike letters are folded to the ASCII letters they imitate (Cyrillic ``а`` in
   ``nаked``; ``vgate.text.confusables``) in every word that has an ASCII letter or is made
   only of look-alikes;
5. words spelled out letter by letter are joined: ``n a k e d``, ``n.a.k.e.d``, ``n-a-k-e-d``.

``fold_leet`` additionally reads digits and symbols inside words as letters (``n4k3d``); the
rules detector matches its terms against it, the model does not read it.

Reports always keep the original text; detectors score both and keep the maximum.
"""

from __future__ import annotations

import re
import unicodedata

from vgate.text.confusables import CONFUSABLES

_SEP = r"[\s.\-_*·•|/\\+~:,']"
_SPELLED = re.compile(rf"(?<![^\W_])[^\W_](?:{_SEP}{{1,3}}[^\W_]){{2,}}(?![^\W_])")
"""Three or more single letters or digits, each followed by one to three separators."""
_SEPARATOR = re.compile(f"{_SEP}+")
_WORD = re.compile(r"[^\W_]+")
_LEET_WORD = re.compile(
    r"(?<![A-Za-z0-9@$!|])[A-Za-z0-9@$!|]*(?:[A-Za-z][0-9@$!|]|[0-9@$!|][A-Za-z])"
    r"[A-Za-z0-9@$!|]*"
)
"""A word where a letter touches a digit or one of ``@ $ ! |`` (other words stay as they are)."""
_LEET_HINT = re.compile(r"[A-Za-z][0-9@$!|]|[0-9@$!|][A-Za-z]")
_NUMBER_UNIT = re.compile(r"\d+[A-Za-z]")
"""A number with a one-letter unit (``4k``, ``3d``, ``1080p``) is not leetspeak."""
_LEET = str.maketrans({"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
                       "@": "a", "$": "s", "!": "i", "|": "l"})  # fmt: skip


_INVISIBLE = re.compile(
    "["
    "\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f"  # control characters (not whitespace)
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
    "\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\U000110bd\U000110cd\U00013430-\U00013438"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff"  # ..., tags, VS 17-256
    "\ud800-\udfff\ue000-\uf8ff\U000f0000-\U0010ffff"  # lone surrogates, private use
    "]"
)
"""Characters that show nothing a reader notices inside a word: format characters (zero-width
spaces and joiners, bidi controls, soft hyphen, tag characters), variation selectors, the
combining grapheme joiner, Hangul and braille fillers, control and private-use characters."""
_SPACES = re.compile("[\t\n\r\x0b\x0c\x1c-\x1f\x85]")


def _strip_invisible(text: str) -> str:
    return _INVISIBLE.sub("", _SPACES.sub(" ", text))


_MARKS = "\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_MARKED_BASE = re.compile(
    f"([\\x00-\\u058f{''.join(chr(c) for c in CONFUSABLES if c > 0x58F)}])[{_MARKS}]+"
)
"""A Latin, Greek, Cyrillic or Armenian letter (or a look-alike) and the combining marks on it."""


def _strip_marks(text: str) -> str:
    """Drop combining marks on Latin, Greek, Cyrillic, Armenian and look-alike letters
    (``n̷a̷k̷e̷d̷``, accents); marks on other scripts (Devanagari vowel signs, ...) stay."""
    decomposed = unicodedata.normalize("NFD", text)
    stripped = _MARKED_BASE.sub(r"\1", decomposed)
    return text if stripped == decomposed else unicodedata.normalize("NFC", stripped)


def _fold_word(match: re.Match[str]) -> str:
    word = match.group(0)
    if word.isascii():
        return word
    folded = word.translate(CONFUSABLES)
    letters = [ch for ch in word if ch.isalpha()]
    has_ascii = any(ch.isascii() for ch in letters)
    all_lookalike = all(ord(ch) in CONFUSABLES or ch.isascii() for ch in letters)
    return folded if has_ascii or all_lookalike else word


def _join_spelled(match: re.Match[str]) -> str:
    run = match.group(0)
    letters = _SEPARATOR.sub("", run)
    if sum(ch.isalpha() for ch in letters) < 3:  # "4 k, 8 k" stays
        return run
    # "a n a k e d": a leading English one-letter word stays a word of its own.
    if len(letters) >= 4 and letters[0] in "aAiI":
        return f"{letters[0]} {letters[1:]}"
    return letters


def _normalize_once(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = _strip_invisible(text)
    text = _strip_marks(text)
    text = _WORD.sub(_fold_word, text)
    return _SPELLED.sub(_join_spelled, text)


def normalize(text: str) -> str:
    """``text`` with obfuscation undone (see the module docstring); idempotent."""
    if text.isascii() and text.isprintable() and _SPELLED.search(text) is None:
        return text  # the common case: plain ASCII, nothing to undo
    previous, text = text, _normalize_once(text)
    while text != previous:  # a fold can expose another (a joined run next to a mark)
        previous, text = text, _normalize_once(text)
    return text


def _fold_leet_word(match: re.Match[str], one: str) -> str:
    word = match.group(0)
    core = word.rstrip("!")
    if core.isalpha() or not any(ch.isalpha() for ch in core) or _NUMBER_UNIT.fullmatch(core):
        return word
    return core.translate(_LEET).replace("1", one) + word[len(core) :]


def fold_leet(text: str, one: str = "i") -> str:
    """Digits and ``@ $ ! |`` inside words that also have letters read as letters (``n4k3d`` ->
    ``naked``); ``1`` reads as ``one`` (``i`` or ``l``). Numbers on their own, and numbers with
    a one-letter unit (``4k``, ``3d``), stay."""
    if _LEET_HINT.search(text) is None:
        return text
    return _LEET_WORD.sub(lambda m: _fold_leet_word(m, one), text)
