"""Configuration discovery, as ruff and bandit do it.

Without ``--policy``, vgate looks for ``.vgate.yaml``, ``vgate.yaml`` or a ``[tool.vgate]`` table
in ``pyproject.toml``, in the working directory and then each parent up to the repository root
(the folder holding ``.git``); outside a repository only the working directory is searched. The
first file found is the policy (it usually ``extends: default``). ``--policy`` wins and
``--no-config`` turns discovery off. ``.vgateignore`` is found the same way.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vgate.errors import PolicyError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_NAMES = (".vgate.yaml", "vgate.yaml")
PYPROJECT = "pyproject.toml"
IGNORE_FILE = ".vgateignore"
DEFAULT_POLICY = "default"
MAX_PYPROJECT_BYTES = 1 << 20


@dataclass(frozen=True)
class PolicyChoice:
    """The policy a command uses and why: ``--policy``, a discovered file, or the default."""

    ref: str
    origin: str


def search_dirs(start: Path | None = None) -> Iterator[Path]:
    """``start`` (the working directory) and its parents up to the repository root; only
    ``start`` when it is not inside a git repository."""
    here = (start or Path.cwd()).resolve()
    chain = [here, *here.parents]
    root = next((d for d in chain if (d / ".git").exists()), None)
    yield from chain[: chain.index(root) + 1] if root is not None else [here]


def read_pyproject_table(path: Path) -> dict[str, Any] | None:
    """The ``[tool.vgate]`` table of a pyproject.toml, or None when it has none."""
    try:
        raw = path.read_bytes()[: MAX_PYPROJECT_BYTES + 1]
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > MAX_PYPROJECT_BYTES:
        raise PolicyError(f"{path}: larger than {MAX_PYPROJECT_BYTES:,} bytes")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{path}: not valid TOML ({exc})") from None
    table = data.get("tool", {}).get("vgate") if isinstance(data.get("tool"), dict) else None
    if table is None:
        return None
    if not isinstance(table, dict):
        raise PolicyError(f"{path}: [tool.vgate] must be a table")
    return table


def find_config(start: Path | None = None) -> Path | None:
    """The nearest ``.vgate.yaml``, ``vgate.yaml`` or pyproject.toml with ``[tool.vgate]``."""
    for directory in search_dirs(start):
        for name in CONFIG_NAMES:
            if (directory / name).is_file():
                return directory / name
        pyproject = directory / PYPROJECT
        if pyproject.is_file() and read_pyproject_table(pyproject) is not None:
            return pyproject
    return None


def find_ignore_file(start: Path | None = None) -> Path | None:
    """The nearest ``.vgateignore``."""
    return next((d / IGNORE_FILE for d in search_dirs(start) if (d / IGNORE_FILE).is_file()), None)


def choose_policy(policy: str | None, no_config: bool = False) -> PolicyChoice:
    """``--policy`` if given, else the discovered config (unless ``--no-config``), else the
    shipped default policy."""
    if policy is not None:
        return PolicyChoice(policy, "from --policy")
    if no_config:
        return PolicyChoice(DEFAULT_POLICY, "shipped default; discovery off (--no-config)")
    found = find_config()
    if found is None:
        return PolicyChoice(
            DEFAULT_POLICY,
            "shipped default; no .vgate.yaml, vgate.yaml or [tool.vgate] in pyproject.toml found",
        )
    return PolicyChoice(_relative(found), "discovered")


def _relative(path: Path) -> str:
    """``path`` relative to the working directory (``../../.vgate.yaml``) when possible."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
