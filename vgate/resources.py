"""Locate files shipped with vgate (policies, models) in a wheel or a source checkout."""

from __future__ import annotations

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


def builtin_models() -> list[str]:
    """Names of the shipped prompt models (``builtin:<name>``)."""
    models = shipped_dir("models")
    return sorted(p.name for p in models.iterdir() if p.is_dir()) if models.is_dir() else []
