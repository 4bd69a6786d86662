"""Small validators shared by the policy sections: each failure names the file and key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from vgate.errors import PolicyError, ReadFailures


def kind(value: object) -> str:
    """How a YAML value reads in an error message (``a list``, ``nothing``)."""
    if value is None:
        return "nothing"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names.update({list: "a list", dict: "a mapping"})
    return names.get(type(value), type(value).__name__)


def fail(name: str, key: str, message: str) -> PolicyError:
    """The error for one bad key: ``policy.yaml: categories.nude.threshold: expected ...``."""
    return PolicyError(f"{name}: {key}: {message}")


def check_keys(name: str, prefix: str, data: dict[str, Any], allowed: dict[str, str]) -> None:
    """Reject keys outside ``allowed``, listing the expected ones."""
    for key in data:
        if key not in allowed:
            plain = isinstance(key, str) and key.isprintable() and key.strip() == key != ""
            shown = key if plain else repr(key)  # keep the message on one line, keys visible
            path = f"{prefix}.{shown}" if prefix else shown
            raise fail(name, path, f"unknown key; expected one of {', '.join(allowed)}")


def check_mapping(name: str, key: str, value: object) -> dict[str, Any]:
    """``value`` as a mapping, or an error."""
    if not isinstance(value, dict):
        raise fail(name, key, f"expected a mapping, got {kind(value)}")
    return value


def check_str_list(name: str, key: str, value: object) -> None:
    """A list of non-empty strings."""
    if not isinstance(value, list):
        raise fail(name, key, f"expected a list of strings, got {kind(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise fail(name, f"{key}[{i}]", f"expected a non-empty string, got {kind(item)}")


def check_string(name: str, key: str, value: object) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise fail(name, key, f"expected a non-empty string, got {kind(value)}")
    return value


def check_choice(name: str, key: str, value: object, choices: tuple[str, ...]) -> str:
    """One of ``choices``."""
    if value not in choices:
        raise fail(name, key, f"expected one of {', '.join(choices)}, got {value!r}")
    return str(value)


def check_number(
    name: str, key: str, value: object, low: float, high: float, *, integer: bool = False
) -> float:
    """A number (an integer when ``integer``) in ``[low, high]``."""
    number_types = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, number_types) or not low <= value <= high:
        what = "an integer" if integer else "a number"
        upper = "" if high == float("inf") else f" to {high:g}"
        raise fail(name, key, f"expected {what} from {low:g}{upper}, got {value!r}")
    return value


def check_bool(name: str, key: str, value: object) -> bool:
    """true or false."""
    if not isinstance(value, bool):
        raise fail(name, key, f"expected true or false, got {value!r}")
    return value


def read_yaml_file(path: Path, name: str, what: str) -> Any:
    """Parse the YAML file ``path`` (a ``what``: "policy", "labels"); any problem is a one-line
    PolicyError naming ``name``. An empty file is an error too."""
    failures = ReadFailures(
        PolicyError,
        missing=f"{name}: {what} file not found",
        directory=f"{name}: is a directory, expected a {what} YAML file",
        not_utf8=f"{name}: not a UTF-8 text file",
        unreadable=f"{name}: cannot read {what} file ({{reason}})",
    )
    with failures.guard():
        text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise PolicyError(f"{name}: not valid YAML{where}: {problem}") from None
    if data is None:
        raise PolicyError(f"{name}: {what} file is empty")
    return data
