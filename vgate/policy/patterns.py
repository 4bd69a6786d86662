"""User regular expressions (policy ``patterns``) on RE2, a linear-time engine.

Python's ``re`` backtracks: ``(a+)+$`` against ``"a" * 40 + "b"`` runs for minutes, so a policy
(or a prompt crafted against it) could hang the gate. RE2 matches in time linear in the text and
refuses the constructs that need backtracking (backreferences, lookaround, possessive and atomic
groups). Its ``\\w``, ``\\d``, ``\\s`` and ``\\b`` are ASCII-only; use ``\\pL`` / ``\\p{L}`` for
letters of any script.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import re2

MAX_PATTERN_MEMORY = 8 << 20
"""RE2's memory budget per compiled pattern (its default); larger programs are refused."""

_SURROGATE = re.compile("[\ud800-\udfff]")


class UnsafePattern(ValueError):
    """A pattern RE2 refuses: invalid, a construct that needs backtracking, or too large."""


def _options() -> Any:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # RE2 would print its own copy of the error on stderr
    options.max_mem = MAX_PATTERN_MEMORY
    return options


class UserPattern:
    """A case-insensitive user pattern compiled by RE2."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        try:
            self._regex = re2.compile(pattern, _options())
        except re2.error as exc:
            reason = exc.args[0] if exc.args else exc
            if isinstance(reason, bytes):
                reason = reason.decode("utf-8", "replace")
            raise UnsafePattern(str(reason)) from None
        except (TypeError, ValueError, UnicodeError) as exc:
            raise UnsafePattern(str(exc)) from None

    def finditer(self, text: str) -> Iterator[Any]:
        """Matches in ``text`` (lone surrogates, which RE2 cannot take, read as U+FFFD)."""
        return self._regex.finditer(_SURROGATE.sub("\ufffd", text))
