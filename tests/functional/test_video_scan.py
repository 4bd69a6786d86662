"""``vgate scan`` on videos: time ranges, aggregation, text side, reports, exit codes, API."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers import CliResult, validate_sarif
from tests.videokit import BLUE, RED, make_audio, make_video, model_and_labels
from vgate.categories import CATEGORY_IDS
from vgate.core.findings import BLOCK, MediaRef, Record
from vgate.core.video import FrameChecker, check_frames
from vgate.errors import VgateError
from vgate.policy import load_policy

VIOLENT = CATEGORY_IDS.index("violent_bloody")


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Videos (red frames 1.5-2.5 s of 4 s), a frame model and its labels, made once."""
    root = tmp_path_factory.mktemp("media")
    model, labels = model_and_labels(root / "model")
    paths = {
        "red": make_video(
            root / "red.mp4",
            metadata={"title": "Holiday", "comment": "blood on the knife"},
            subtitles=[(0.5, 1.0, "hello there"), (2.0, 3.5, "gore everywhere")],
        ),
        "clean": make_video(root / "clean.webm", red=range(0)),
        "audio": make_audio(root / "song.mp4"),
        "broken": root / "broken.mkv",
    }
    paths["broken"].write_bytes(b"\x1a\x45\xdf\xa3 not really matroska" * 20)
    return {"model": model, "labels": labels, **{k: str(v) for k, v in paths.items()}}


def frame_args(media: dict[str, str]) -> list[str]:
    return ["--frame-model", media["model"], "--labels", media["labels"]]


def scan(vgate_main, *args: str, fmt: str = "json") -> tuple[CliResult, Any]:
    result = vgate_main("scan", "-d", "rules", "-f", fmt, *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result, json.loads(result.stdout) if result.stdout.strip() else None


def hits(report: dict) -> list[tuple[str, str, float | None, float | None]]:
    return [
        (r["location"], h["category"], h.get("start_s"), h.get("end_s"))
        for r in report["results"]
        for h in r["hits"]
    ]


# --- what is found, and when ---------------------------------------------------------------------


def test_video_and_prompts_in_one_run(vgate_main, media: dict, tmp_path: Path) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("a cat on a skateboard\n", encoding="utf-8")
    result, report = scan(vgate_main, str(prompts), media["red"], "--fps", "10", *frame_args(media))
    assert result.code == 1
    red = media["red"]
    assert [r["location"] for r in report["results"]] == [
        f"{prompts}:1",
        f"{red} [frames 1.50-2.50 s]",
        f"{red} [metadata:title]",
        f"{red} [metadata:comment]",
        f"{red} [subtitle 0.50-1.00 s]",
        f"{red} [subtitle 2.00-3.50 s]",
    ]
    assert hits(report) == [
        (f"{red} [frames 1.50-2.50 s]", "violent_bloody", 1.5, 2.5),
        (f"{red} [metadata:comment]", "violent_bloody", None, None),
        (f"{red} [subtitle 2.00-3.50 s]", "violent_bloody", None, None),
    ]
    frames = report["results"][1]
    assert frames["video"] == {
        "part": "frames",
        "start_s": 1.5,
        "end_s": 2.5,
        "sampled_frames": 40,
        "duration_s": 4.0,
    }
    assert frames["hits"][0]["frames"] == 10 and frames["decision"] == BLOCK
    assert report["results"][5]["video"] == {
        "part": "subtitle",
        "start_s": 2.0,
        "end_s": 3.5,
        "stream": 1,
    }
    assert report["summary"]["videos"] == 1 and report["summary"]["scanned"] == 6
    assert "frame-model" in report["meta"]["detectors"]
    assert "scanned 6 items (1 video)" in result.stderr


def test_uniform_frames_give_the_range_of_the_flagged_samples(vgate_main, media: dict) -> None:
    _, report = scan(vgate_main, media["red"], "--frames", "8", *frame_args(media))
    frames = report["results"][0]
    # samples at 0.25, 0.75, ... 3.75 s: the frames shown at 1.75 and 2.25 s (1.7 and 2.2) are red
    assert (frames["hits"][0]["start_s"], frames["hits"][0]["end_s"]) == (1.7, 2.3)
    assert frames["hits"][0]["frames"] == 2 and frames["video"]["sampled_frames"] == 8


@pytest.mark.parametrize(("fraction", "flagged"), [(0.2, True), (0.25, True), (0.3, False)])
def test_temporal_vote_needs_a_share_of_the_frames(
    vgate_main, media: dict, tmp_path: Path, fraction: float, flagged: bool
) -> None:
    policy = tmp_path / "vote.yaml"
    policy.write_text(
        f"extends: default\nvideo: {{aggregate: vote, vote_fraction: {fraction}, text: false}}\n",
        encoding="utf-8",
    )
    result, report = scan(
        vgate_main, media["red"], "--fps", "10", "-p", str(policy), *frame_args(media)
    )
    (frames,) = report["results"]  # text: false -> no metadata or subtitle items
    assert (frames["decision"] == BLOCK) is flagged  # 10 of 40 frames are red (25 %)
    assert result.code == (1 if flagged else 0)
    if flagged:
        assert "vote: at least" in frames["reasons"][0]


def test_vote_score_is_the_kth_highest_frame_score() -> None:
    policy = load_policy("default")
    scores = np.zeros((10, 5), np.float32)
    scores[:, VIOLENT] = [0.9, 0.8, 0.7, 0.6, 0.1, 0.1, 0.1, 0.1, 0.1, 0.95]
    times = np.arange(10, dtype=float)
    for aggregate, fraction, expected in [("max", 0.5, 0.95), ("vote", 0.3, 0.8)]:
        video = type(policy.video)(aggregate=aggregate, vote_fraction=fraction)
        checker = FrameChecker(type(policy)(**{**policy.__dict__, "video": video}))
        record = Record("x", "v.mp4", media=MediaRef("frames", frames=10, duration_s=10))
        verdict = checker.judge(record, times, np.ones(10), scores)
        assert verdict.scores[VIOLENT] == pytest.approx(expected)
        (hit,) = verdict.hits
        assert (hit.start_s, hit.end_s, hit.frames) == (0.0, 10.0, 5)  # frames >= 0.5: 0-3, 9


def test_policy_thresholds_and_frame_model_from_the_policy(
    vgate_main, media: dict, tmp_path: Path
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "extends: default\nvideo:\n"
        f"  frame_model: {media['model']}\n  labels: {media['labels']}\n"
        "  thresholds: {violent_bloody: 0.99}\n  text: false\n",
        encoding="utf-8",
    )
    result, report = scan(vgate_main, media["red"], "-p", str(policy))
    assert result.code == 0 and report["results"][0]["decision"] == "allow"
    assert report["results"][0]["location"] == f"{media['red']} [frames]"


def test_without_a_frame_detector_only_the_text_side_is_scanned(vgate_main, media: dict) -> None:
    result, report = scan(vgate_main, media["clean"], media["red"])
    parts = [r["video"]["part"] for r in report["results"]]
    assert "frames" not in parts and "subtitle" in parts
    assert "no frame detector configured: the frames of 2 video(s)" in result.stderr
    assert report["summary"]["notes"] and result.code == 1  # the comment and a subtitle


def test_table_shows_video_locations(vgate_main, media: dict) -> None:
    result = vgate_main("scan", "-d", "rules", media["red"], "--fps", "10", *frame_args(media))
    assert result.code == 1
    assert f"{media['red']} [frames 1.50-2.50 s]" in result.stdout
    assert f"{media['red']} [subtitle 2.00-3.50 s]" in result.stdout
    assert "Scanned 5 items (1 video)" in result.stdout


# --- SARIF and baselines -------------------------------------------------------------------------


def test_sarif_has_region_free_video_results_with_seconds(vgate_main, media: dict) -> None:
    result, log = scan(
        vgate_main, media["red"], media["audio"], "--fps", "10", *frame_args(media), fmt="sarif"
    )
    validate_sarif(log)
    assert result.code == 1
    run = log["runs"][0]
    frames = run["results"][0]
    location = frames["locations"][0]["physicalLocation"]
    assert "region" not in location and location["artifactLocation"]["uri"].endswith("red.mp4")
    props = frames["properties"]
    assert (props["videoPart"], props["startSeconds"], props["endSeconds"]) == ("frames", 1.5, 2.5)
    assert (props["sampledFrames"], props["flaggedFrames"]) == (40, 10)
    assert "in video frames at 1.50-2.50 s" in frames["message"]["text"]
    subtitle = run["results"][-1]
    assert (subtitle["properties"]["startSeconds"], subtitle["properties"]["endSeconds"]) == (
        2.0,
        3.5,
    )
    (note,) = run["invocations"][0]["toolExecutionNotifications"]
    assert (
        note["descriptor"]["id"] == "vgate/video-error" and "audio only" in note["message"]["text"]
    )


def test_a_baseline_waives_known_video_findings(vgate_main, media: dict, tmp_path: Path) -> None:
    base = tmp_path / "base.sarif"
    args = [media["red"], "--fps", "10", *frame_args(media)]
    first = vgate_main("scan", "-d", "rules", "-f", "sarif", "-o", str(base), *args)
    assert first.code == 1
    result, report = scan(vgate_main, "--baseline", str(base), *args)
    assert result.code == 0
    assert {r["suppressed_by"] for r in report["results"] if r["hits"]} == {"baseline"}


# --- bad input and exit codes --------------------------------------------------------------------


def test_bad_videos_are_reported_and_the_rest_is_kept(vgate_main, media: dict) -> None:
    result, report = scan(
        vgate_main, media["broken"], media["clean"], media["audio"], *frame_args(media)
    )
    assert result.code == 0  # the clean video was scanned: per-file errors do not fail closed
    assert [e["source"] for e in report["summary"]["errors"]] == [media["broken"], media["audio"]]
    assert {e["kind"] for e in report["summary"]["errors"]} == {"video"}
    assert report["summary"]["videos"] == 1 and report["summary"]["video_errors"] == 2
    assert len([ln for ln in result.stderr.splitlines() if ln.startswith("vgate: error:")]) == 2


def test_exit_2_when_no_video_could_be_scanned(vgate_main, media: dict) -> None:
    result, report = scan(vgate_main, media["broken"], media["audio"], *frame_args(media))
    assert result.code == 2 and report["summary"]["scanned"] == 0


def test_findings_still_exit_1_beside_a_bad_video(vgate_main, media: dict) -> None:
    result, _ = scan(vgate_main, media["red"], media["broken"], *frame_args(media))
    assert result.code == 1


def test_prompt_input_errors_still_fail_closed(vgate_main, media: dict, tmp_path: Path) -> None:
    result, _ = scan(vgate_main, str(tmp_path / "missing.txt"), media["clean"], *frame_args(media))
    assert result.code == 2


def test_truncated_video_is_scanned_in_part(vgate_main, media: dict, tmp_path: Path) -> None:
    data = make_video(tmp_path / "full.mkv", noise=True, gop=5, red=range(0, 10)).read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    result, report = scan(vgate_main, str(cut), "--fps", "10", *frame_args(media))
    assert result.code == 1  # the red start was decoded and flagged
    (frames,) = [r for r in report["results"] if r["video"]["part"] == "frames"]
    assert frames["video"]["sampled_frames"] < 40 and frames["notes"]
    (error,) = report["summary"]["errors"]
    assert error["kind"] == "video" and "scanned in part" in error["message"]


def test_missing_pyav_is_said_once_and_prompts_still_scan(
    vgate_main, media: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "av", None)
    prompts = tmp_path / "p.txt"
    prompts.write_text("gore\n", encoding="utf-8")
    result, report = scan(vgate_main, media["red"], str(prompts), media["clean"])
    messages = [e["message"] for e in report["summary"]["errors"]]
    assert "pip install 'vgate[video]'" in messages[0]
    assert messages[1] == "not scanned: the 'av' package is missing"
    assert result.code == 1 and report["summary"]["scanned"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frames", "4", "--fps", "2"], "give --frames or --fps, not both"),
        (["--labels", "x.yaml"], "--labels needs --frame-model"),
        (["--frames", "0"], "--frames must be from 1"),
        (["--fps", "0"], "--fps must be from 0.001"),
    ],
)
def test_option_errors(vgate_main, media: dict, args: list[str], message: str) -> None:
    result = vgate_main("scan", media["red"], *args)
    assert result.code == 2 and message in result.stderr and result.stdout == ""


def test_a_broken_frame_model_fails_before_the_report(
    vgate_main, media: dict, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"junk")
    result = vgate_main(
        "scan", media["red"], "--frame-model", str(junk), "--labels", media["labels"]
    )
    assert result.code == 2 and result.stdout == ""
    assert (
        result.stderr.startswith("vgate: error: frame model") and "Traceback" not in result.stderr
    )


# --- the API for guarded generation ---------------------------------------------------------------


def test_check_frames_on_generated_frames(media: dict) -> None:
    frames = np.empty((24, 32, 32, 3), np.uint8)
    frames[...] = BLUE
    frames[12:18] = RED  # 1.5-2.25 s at 8 fps
    verdict = check_frames(
        frames, 8.0, "default", frame_model=media["model"], labels=media["labels"]
    )
    assert verdict.decision == BLOCK
    (hit,) = verdict.hits
    assert hit.category == "violent_bloody" and hit.start_s is not None
    assert hit.start_s >= 1.5 and hit.end_s <= 2.25  # within the red frames (16 samples of 24)
    assert verdict.record.source == "<generated>" and verdict.record.media.part == "frames"
    frames[...] = BLUE
    assert check_frames(frames, 8.0, frame_model=media["model"], labels=media["labels"]).hits == []


def test_check_frames_needs_a_detector_and_frames(media: dict) -> None:
    frames = np.zeros((4, 8, 8, 3), np.uint8)
    with pytest.raises(VgateError, match="no frame detector configured"):
        check_frames(frames, 8.0)
    with pytest.raises(VgateError, match=r"expected uint8 frames \[F, H, W, 3\]"):
        check_frames(frames[..., 0], 8.0, frame_model=media["model"], labels=media["labels"])
