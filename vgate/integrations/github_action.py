"""Helpers for CI wrappers such as the GitHub Action (``scripts/action-scan.sh``).

``python -m vgate.integrations.github_action counts REPORT`` prints ``key=value`` lines
(scanned, blocked, warned, suppressed, errors) read back from a JSON, JSONL or SARIF report, ready
to append to ``$GITHUB_OUTPUT``. ``python -m vgate.integrations.github_action failed-sarif REPORT
MESSAGE`` writes a valid SARIF log with no results and a failed invocation, for when the scan
stopped before writing one (bad policy, bad option), so that a following upload step still
finds a file.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vgate.core.findings import ScanMeta, ScanSummary
from vgate.reports.json_report import dumps
from vgate.reports.sarif import SarifReporter, utc_now

COUNT_KEYS = ("scanned", "blocked", "warned", "suppressed", "errors")


def report_counts(path: Path) -> dict[str, int]:
    """Counts from the summary of a vgate JSON, JSONL or SARIF report (format by content)."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        document: Any = json.loads(text)
    except json.JSONDecodeError:
        lines = [line for line in text.splitlines() if line.strip()]
        document = json.loads(lines[-1]) if lines else {}
    summary: Any = None
    if isinstance(document, dict) and isinstance(document.get("runs"), list):
        for run in document["runs"]:
            if (run.get("tool") or {}).get("driver", {}).get("name") == "vgate":
                summary = (run.get("properties") or {}).get("summary")
                break
    elif isinstance(document, dict):
        summary = document.get("summary")
    if not isinstance(summary, dict):
        raise ValueError(f"{path}: no vgate summary found (is it a json, jsonl or sarif report?)")
    counts = {key: summary.get(key) for key in COUNT_KEYS[:4]}
    counts["errors"] = summary.get("error_count", len(summary.get("errors") or []))
    return {key: int(value or 0) for key, value in counts.items()}


def failed_sarif(message: str, command_line: Sequence[str] = ()) -> dict[str, Any]:
    """A SARIF log with no results whose invocation failed with ``message``."""
    reporter = SarifReporter(io.StringIO())
    reporter.start(
        ScanMeta(policy="", detectors=[], command_line=list(command_line), start_time_utc="")
    )
    document = reporter.document(ScanSummary())
    invocation = document["runs"][0]["invocations"][0]
    invocation["executionSuccessful"] = False
    invocation["endTimeUtc"] = utc_now()
    invocation["toolExecutionNotifications"].append(
        {
            "level": "error",
            "message": {"text": message.strip() or "vgate scan failed before writing a report"},
            "descriptor": {"id": "vgate/scan-failed"},
        }
    )
    return document


def main(argv: Sequence[str] | None = None) -> int:
    """``counts REPORT`` or ``failed-sarif REPORT MESSAGE [COMMAND...]``; exit 2 on bad input."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if len(args) == 2 and args[0] == "counts":
            for key, value in report_counts(Path(args[1])).items():
                print(f"{key}={value}")
            return 0
        if len(args) >= 3 and args[0] == "failed-sarif":
            document = failed_sarif(args[2], args[3:])
            Path(args[1]).write_text(dumps(document) + "\n", encoding="utf-8")
            return 0
    except (OSError, ValueError) as exc:
        print(f"vgate.integrations.github_action: error: {exc}", file=sys.stderr)
        return 2
    print(
        "usage: python -m vgate.integrations.github_action counts REPORT\n"
        "       python -m vgate.integrations.github_action failed-sarif REPORT MESSAGE "
        "[COMMAND...]",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
