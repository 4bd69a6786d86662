"""Labelled prompts for evaluation and probe training: a CSV ``id,text,label``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vgate.categories import CATEGORY_IDS, CATEGORY_INDEX
from vgate.errors import InputError

SAFE = "safe"


REQUIRED_COLUMNS = ("id", "text", "label")


@dataclass
class LabelledData:
    """Prompts with their multi-hot labels ``y[n, 5]`` (all zero = safe)."""

    ids: list[str]
    texts: list[str]
    y: np.ndarray


def parse_label(label: str) -> np.ndarray:
    """``safe`` or ``a|b`` -> multi-hot ``[5]`` int8; ``ValueError`` names what is wrong."""
    parts = [p.strip() for p in label.strip().split("|")]
    y = np.zeros(len(CATEGORY_IDS), dtype=np.int8)
    if parts == [SAFE]:
        return y
    for part in parts:
        if part not in CATEGORY_INDEX:
            expected = ", ".join((SAFE, *CATEGORY_IDS))
            raise ValueError(
                f"unknown label {part!r} (expected {expected}, multi-labels joined by |)"
            )
        y[CATEGORY_INDEX[part]] = 1
    return y


def load_labelled_csv(path: Path) -> LabelledData:
    """Read ``id,text,label`` (extra columns ignored, BOM tolerated); bad input is an InputError."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            columns = reader.fieldnames or []
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if not columns:
                raise InputError(f"{path}: empty file (expected a header id,text,label)")
            if missing:
                raise InputError(
                    f"{path}: missing column(s) {', '.join(missing)} "
                    f"(found {', '.join(columns)}; expected id,text,label)"
                )
            ids, texts, labels = [], [], []
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if row["text"] is None or row["label"] is None:
                    raise InputError(f"{where}: row has fewer fields than the header")
                try:
                    labels.append(parse_label(row["label"]))
                except ValueError as exc:
                    raise InputError(f"{where} (id {row['id']!r}): {exc}") from None
                ids.append(row["id"])
                texts.append(row["text"])
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV ({exc})") from None
    if not ids:
        raise InputError(f"{path}: no data rows")
    return LabelledData(ids, texts, np.stack(labels))
