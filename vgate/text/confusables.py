"""A compact table of look-alike letters, after the Unicode TR39 confusables skeletons.

Only letters that NFKC leaves alone are listed: NFKC already folds full-width forms
(``ｎ`` -> ``n``), mathematical alphanumerics (``𝐧`` -> ``n``), circled letters and most
compatibility forms. The targets are the Latin letters TR39 maps these to (prototype
characters), in the case they look like.
"""

from __future__ import annotations

_PAIRS = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "г": "r", "ԁ": "d", "һ": "h", "і": "i",
    "ј": "j", "к": "k", "ӏ": "l", "м": "m", "н": "h", "о": "o", "п": "n", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "ԛ": "q", "ԝ": "w", "ь": "b", "ү": "y", "ɡ": "g",
    "А": "A", "В": "B", "Е": "E", "Ѕ": "S", "І": "I", "Ј": "J", "К": "K",
    "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "У": "Y", "Х": "X", "Ү": "Y",
    "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W", "Һ": "H", "Ӏ": "I",
    # Greek
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ς": "s",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # Armenian
    "օ": "o", "ս": "u", "ց": "g", "ո": "n", "հ": "h", "Ս": "U", "Օ": "O",
    # Latin letters outside ASCII that read as ASCII ones (small capitals, dotless i, ...)
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɩ": "i", "ɪ": "i", "ʟ": "l", "ɴ": "n", "ʀ": "r", "ʏ": "y",
    "ʙ": "b", "ɢ": "g", "ʜ": "h", "ᴀ": "a", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ᴊ": "j", "ᴋ": "k",
    "ᴍ": "m", "ᴏ": "o", "ᴘ": "p", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ᴢ": "z", "ꜱ": "s",
    "ƙ": "k", "ɾ": "r", "ʋ": "u", "ɒ": "a", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ħ": "h",
    "ł": "l", "Ł": "L", "ŧ": "t", "ƀ": "b", "ɇ": "e",
}  # fmt: skip

CONFUSABLES: dict[int, str] = {ord(k): v for k, v in _PAIRS.items()}
"""``str.translate`` table: look-alike letter -> the ASCII letter it imitates."""
