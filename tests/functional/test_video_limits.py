"""Video limits: the per-video sample cap is said in the report, and the optional per-video
time budget stops frame checks and reports what was not checked (measured with a fake clock)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import write
from tests.videokit import make_video, model_and_labels
from vgate.core import video as video_scan
from vgate.core.gate import Gate
from vgate.core.video import FrameChecker, VideoScanner
from vgate.inputs.video import VideoItem
from vgate.policy import load_policy

pytest.importorskip("av")


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A 4 s clip at 10 fps (red frames 1.5-2.5 s), a frame model and its labels."""
    root = tmp_path_factory.mktemp("limits")
    model, labels = model_and_labels(root / "model")
    return {"model": model, "labels": labels, "red": str(make_video(root / "red.mp4"))}


def frame_args(media: dict[str, str]) -> list[str]:
    return ["--frame-model", media["model"], "--labels", media["labels"]]


def test_sample_cap_is_noted_in_the_reports(vgate_main, media, monkeypatch) -> None:
    monkeypatch.setattr(video_scan, "MAX_SAMPLES", 8)
    args = ("scan", "-d", "rules", media["red"], "--fps", "10", *frame_args(media))
    result = vgate_main(*args, "-f", "json")
    report = json.loads(result.stdout)
    frames = next(r for r in report["results"] if r["video"]["part"] == "frames")
    assert frames["video"]["sampled_frames"] == 8
    note = "40 frames asked (10 per second over 4 s); sampled 8 evenly spaced frames instead"
    assert any(note in n for n in frames["notes"])
    assert any(n.startswith(f"{media['red']}: {note}") for n in report["summary"]["notes"])
    table = vgate_main(*args)
    assert f"Note: {media['red']}: {note}" in table.stdout
    assert f"vgate: warning: {media['red']}: {note}" in result.stderr


def test_no_cap_note_under_the_cap(vgate_main, media) -> None:
    result = vgate_main(
        "scan", "-d", "rules", media["red"], "--fps", "10", *frame_args(media), "-f", "json"
    )
    report = json.loads(result.stdout)
    assert not any("frames asked" in n for n in report["summary"]["notes"])


def ticking_clock(step: float) -> Iterator[float]:
    now = 0.0
    while True:
        yield now
        now += step


def scan_with_budget(media: dict[str, str], budget: float | None, step: float):
    policy = load_policy("default")
    checker = FrameChecker(
        policy, fps=10, frame_model=media["model"], labels=media["labels"], time_budget=budget
    )
    clock = ticking_clock(step)
    scanner = VideoScanner(checker, clock=lambda: next(clock))
    item = VideoItem(media["red"], Path(media["red"]))
    return scanner.scan(item, Gate(policy, detectors="rules"))


def test_time_budget_stops_frame_checks_and_says_so(media) -> None:
    # Each clock reading is 1 s later: the budget of 2.5 s runs out after the third frame.
    verdicts, issues, scanned = scan_with_budget(media, budget=2.5, step=1.0)
    frames = next(v for v in verdicts if v.record.media and v.record.media.part == "frames")
    assert scanned and frames.record.media.frames == 3
    assert [i.message for i in issues] == [
        "scanned in part (3 of 40 sampled frames): time budget of 2.5 s per video reached; "
        "later frames not checked"
    ]
    assert any("time budget of 2.5 s" in note for note in frames.notes)


def test_no_budget_or_a_clock_that_stands_still_checks_every_frame(media) -> None:
    for budget, step in ((None, 1.0), (2.5, 0.0)):
        verdicts, issues, _ = scan_with_budget(media, budget=budget, step=step)
        frames = next(v for v in verdicts if v.record.media and v.record.media.part == "frames")
        assert frames.record.media.frames == 40 and issues == []


def test_time_budget_in_the_policy_and_on_the_command_line(vgate_main, tmp_path: Path) -> None:
    policy = write(tmp_path / "p.yaml", "video:\n  time_budget: 30\n")
    assert load_policy(policy).video.time_budget == 30.0
    bad = write(tmp_path / "bad.yaml", "video:\n  time_budget: -1\n")
    result = vgate_main("policy", "check", str(bad))
    assert result.code == 2 and "video.time_budget: expected a number from 0.001" in result.stderr
    result = vgate_main("scan", "-t", "x", "--video-time-budget", "0")
    assert result.code == 2
    assert "--video-time-budget must be from 0.001" in result.stderr
