"""Text bound for a terminal (the table report and every stderr line), made inert.

Prompts and file names are written by the people the gate guards against. Raw, an ANSI or OSC
escape sequence in one can erase or recolour lines, retitle the window or hide a row, and a bidi
override can reorder what is shown. ``terminal_safe`` spells such characters out as escapes.
JSON, JSONL and SARIF keep the exact text (escaped as JSON requires), not this form.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(
    "["
    "\x00-\x1f\x7f"  # C0 controls (ESC, BEL, CR, LF, TAB, ...) and DEL
    "\x80-\x9f"  # C1 controls (CSI, OSC, NEL, ...)
    "\u061c\u200e\u200f"  # bidi marks: ALM, LRM, RLM
    "\u202a-\u202e"  # bidi embeddings and overrides: LRE, RLE, PDF, LRO, RLO
    "\u2066-\u2069"  # bidi isolates: LRI, RLI, FSI, PDI
    "\u2028\u2029"  # line and paragraph separators
    "\ud800-\udfff"  # lone surrogates (undecodable bytes of a file name)
    "]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    """``text`` with control characters, bidi controls, line separators and lone surrogates
    written as ``\\x1b`` / ``\\u202e`` escapes: one inert line, whatever the input."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape, text)
