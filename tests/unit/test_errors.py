"""The shared error helpers: first_line and the read-error ladder."""

from __future__ import annotations

from pathlib import Path

import pytest

from vgate.errors import InputError, PolicyError, ReadFailures, first_line

FAILURES = ReadFailures(
    InputError, missing="m", directory="d", not_utf8="u", unreadable="cannot read ({reason})"
)


def test_first_line() -> None:
    exc = ValueError("\n  first line\nsecond line")
    assert first_line(exc) == "first line"
    assert first_line(exc, with_type=True) == "ValueError: first line"
    assert first_line(ValueError("x" * 300), limit=160) == "x" * 160
    assert first_line(KeyError()) == "KeyError"
    assert first_line(OSError(" \n "), with_type=True) == "OSError"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.txt", "m"),
        (lambda p: p, "d"),
        (lambda p: (p / "latin1.txt").write_bytes(b"caf\xe9") and p / "latin1.txt", "u"),
    ],
)
def test_read_failures_map_each_error(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(InputError) as info, FAILURES.guard():
        path.read_text(encoding="utf-8")
    assert str(info.value) == message


def test_read_failures_other_os_errors_carry_the_reason() -> None:
    failures = ReadFailures(PolicyError, "m", "d", "u", "cannot read ({reason})")
    with pytest.raises(PolicyError, match=r"^cannot read \(Permission denied\)$"), failures.guard():
        raise PermissionError(13, "Permission denied")


def test_read_failures_let_other_errors_through() -> None:
    with pytest.raises(KeyError), FAILURES.guard():
        raise KeyError("not a read error")
