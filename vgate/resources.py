"""Locate files shipped with vgate (policies, models) in a wheel or a source checkout, and the
CPUs this process may use."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = "builtin:prompt-cascade"
"""The prompt model a policy uses when it names none (models/prompt-cascade/CARD.md)."""


def shipped_dir(kind: str) -> Path:
    """Directory of shipped ``policies`` or ``models``.

    A wheel carries them under ``vgate/_shipped/<kind>``; a source checkout or editable install
    has them at the repository root.
    """
    in_wheel = _PACKAGE_DIR / "_shipped" / kind
    if in_wheel.is_dir():
        return in_wheel
    return _PACKAGE_DIR.parent / kind


def default_threads(cap: int) -> int:
    """Intra-op threads for an onnxruntime session: the CPUs this process may use, at most
    ``cap``."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, cap))
