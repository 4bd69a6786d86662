"""Baselines: the (category, fingerprint) pairs of a previous vgate JSON, JSONL or SARIF report.

A scan with ``--baseline FILE`` waives hits whose pair is in the file, so a gate can be adopted
on a repository with known findings and only fail on new ones. Fingerprints hash the normalized
prompt (``vgate.core.findings.fingerprint``), so moving or re-spacing a prompt keeps it baselined.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from vgate.categories import CATEGORY_IDS
from vgate.core.findings import FINGERPRINT_KEY
from vgate.errors import InputError, ReadFailures

_WAIVABLE = ("block", "warn")

Pair = tuple[str, str]


def load_baseline(path: Path) -> set[Pair]:
    """(category, fingerprint) pairs of the findings in a vgate JSON, JSONL or SARIF report.

    The format is detected from the content. Raises ``InputError`` (one line, naming the file)
    when the file is missing or unreadable, is not JSON, or is not a vgate report.
    """
    path = Path(path)
    failures = ReadFailures(
        InputError,
        missing=f"baseline {path}: file not found",
        directory=f"baseline {path}: is a directory, expected a vgate report",
        not_utf8=f"baseline {path}: not UTF-8 text, expected a vgate report",
        unreadable=f"baseline {path}: cannot read: {{reason}}",
    )
    with failures.guard():
        try:
            with path.open(encoding="utf-8") as handle:
                first = _first_nonblank(handle)
                head = _parse_line(first)
                if head is not None and _is_jsonl_line(head):
                    return _from_jsonl(path, head, handle)
                document = json.loads(first + handle.read())
        except json.JSONDecodeError as exc:
            raise InputError(
                f"baseline {path}: not valid JSON (line {exc.lineno}: {exc.msg}); "
                "expected a vgate json, jsonl or sarif report"
            ) from None
    return _from_document(path, document)


def _first_nonblank(handle: Iterable[str]) -> str:
    """The first non-blank line (with its newline), or ``""`` for an empty file."""
    for line in handle:
        if line.strip():
            return line
    return ""


def _parse_line(line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def _is_jsonl_line(obj: Any) -> bool:
    """A JSONL report line: an item (with a fingerprint) or the final summary line."""
    return isinstance(obj, dict) and ("fingerprint" in obj or _is_summary_line(obj))


def _is_summary_line(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("summary"), dict)
        and "results" not in obj
        and "runs" not in obj
    )


def _from_jsonl(path: Path, head: Any, rest: Iterable[str]) -> set[Pair]:
    """Pairs of a JSONL report; every non-blank line must be a vgate item or summary line."""
    pairs: set[Pair] = set()
    seen_vgate = False
    for number, obj in itertools.chain([(1, head)], _objects(path, rest, start=2)):
        if _is_summary_line(obj):
            seen_vgate = seen_vgate or _is_vgate_tool(obj.get("tool"))
            continue
        if not (isinstance(obj, dict) and isinstance(obj.get("fingerprint"), str)):
            raise InputError(f"baseline {path}: line {number} is not a vgate jsonl report item")
        seen_vgate = True
        pairs.update(_item_pairs(path, obj))
    if not seen_vgate:
        raise InputError(f"baseline {path}: not a vgate report")
    return pairs


def _objects(path: Path, lines: Iterable[str], start: int) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) of each non-blank line."""
    for number, line in enumerate(lines, start=start):
        if not line.strip():
            continue
        obj = _parse_line(line)
        if obj is None:
            raise InputError(f"baseline {path}: line {number} is not valid JSON")
        yield number, obj


def _from_document(path: Path, document: Any) -> set[Pair]:
    if isinstance(document, dict) and "runs" in document:
        return _from_sarif(path, document)
    if isinstance(document, dict) and _is_vgate_tool(document.get("tool")):
        results = document.get("results")
        if not isinstance(results, list):
            raise InputError(f"baseline {path}: vgate json report without a 'results' list")
        pairs: set[Pair] = set()
        for item in results:
            pairs.update(_item_pairs(path, item))
        return pairs
    raise InputError(
        f"baseline {path}: not a vgate report (expected vgate json, jsonl or sarif output)"
    )


def _item_pairs(path: Path, item: Any) -> set[Pair]:
    """Pairs of one JSON/JSONL item: its block/warn hits (also when they were waived)."""
    if not isinstance(item, dict) or not isinstance(item.get("fingerprint"), str):
        raise InputError(f"baseline {path}: a report item has no fingerprint")
    hits = item.get("hits") or []
    if not isinstance(hits, list):
        raise InputError(f"baseline {path}: a report item has malformed 'hits'")
    return {
        (hit["category"], item["fingerprint"])
        for hit in hits
        if isinstance(hit, dict)
        and hit.get("category") in CATEGORY_IDS
        and hit.get("action") in _WAIVABLE
    }


def _from_sarif(path: Path, document: dict[str, Any]) -> set[Pair]:
    runs = document.get("runs")
    if not isinstance(runs, list):
        raise InputError(f"baseline {path}: SARIF without a 'runs' list")
    vgate_runs = [run for run in runs if isinstance(run, dict) and _is_vgate_tool(_driver(run))]
    if not vgate_runs:
        raise InputError(f"baseline {path}: SARIF file has no vgate run")
    pairs: set[Pair] = set()
    for run in vgate_runs:
        for result in run.get("results") or []:
            if not isinstance(result, dict):
                continue
            rule_id = str(result.get("ruleId", ""))
            category = rule_id.removeprefix("vgate/")
            prints = result.get("partialFingerprints") or {}
            fingerprint = prints.get(FINGERPRINT_KEY) if isinstance(prints, dict) else None
            if category in CATEGORY_IDS and isinstance(fingerprint, str):
                pairs.add((category, fingerprint))
    return pairs


def _driver(run: dict[str, Any]) -> Any:
    tool = run.get("tool")
    return tool.get("driver") if isinstance(tool, dict) else None


def _is_vgate_tool(tool: Any) -> bool:
    return isinstance(tool, dict) and tool.get("name") == "vgate"
