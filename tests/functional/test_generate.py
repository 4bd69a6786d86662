"""``vgate generate`` and ``vgate probe collect``: options, the prompt gate, video writing."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vgate.errors import VgateError
from vgate.lvd.collect import parse_steps
from vgate.lvd.video_writer import write_video


@given(st.lists(st.integers(1, 200), min_size=1, max_size=8))
def test_parse_steps_reads_lists_and_ranges(steps: list[int]) -> None:
    assert parse_steps(",".join(map(str, steps))) == sorted(set(steps))
    low, high = min(steps), max(steps)
    assert parse_steps(f"{low}-{high}") == list(range(low, high + 1))


@pytest.mark.parametrize("spec", ["", "0", "a", "3-1", "1,,2", "-2", "1-x"])
def test_parse_steps_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(VgateError, match="--steps"):
        parse_steps(spec)


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".gif", ".mkv"])
def test_write_video_round_trips_frame_count_and_even_size(tmp_path: Path, suffix: str) -> None:
    frames = np.zeros((6, 33, 30, 3), np.float32)
    frames[:, :, :, 0] = np.linspace(0, 1, 6)[:, None, None]  # red ramps up over time
    path = write_video(frames, tmp_path / f"v{suffix}", fps=6)
    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 6
    if suffix != ".gif":
        assert decoded[0].shape[:2] == (32, 30)  # 4:2:0 needs even sizes
    assert decoded[-1][..., 0].mean() > decoded[0][..., 0].mean() + 150


def test_write_video_refuses_unknown_extensions(tmp_path: Path) -> None:
    with pytest.raises(VgateError, match="unsupported video extension"):
        write_video(np.zeros((2, 8, 8, 3), np.uint8), tmp_path / "v.txt")


def test_guarded_generate_blocks_an_unsafe_prompt_before_loading_the_model(
    vgate_main, tmp_path: Path
) -> None:
    out = tmp_path / "v.mp4"
    result = vgate_main(
        "generate",
        "a naked woman in a porn video, nsfw",
        "--model",
        str(tmp_path / "no-such-model"),  # never loaded: the prompt gate stops first
        "--guarded",
        "--probe",
        str(tmp_path / "no-such-probe"),  # not loaded either
        "--out",
        str(out),
        "--format",
        "json",
    )
    assert result.code == 1, result.stderr
    item = json.loads(result.stdout)["results"][0]
    assert item["decision"] == "block"
    assert [h["category"] for h in item["hits"]] == ["pornographic"]
    gen = item["properties"]["generation"]
    assert gen["stopped_by"] == "prompt" and gen["steps_run"] == 0 and gen["steps_saved"] == 50
    assert not out.exists()
    assert "blocked by the prompt gate" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xml"], "--format must be one of"),
        (["--fail-on", "sometimes"], "--fail-on must be one of"),
        (["--steps", "0"], "--steps must be at least 1"),
    ],
)
def test_generate_bad_options_exit_2(vgate_main, args: list[str], message: str) -> None:
    result = vgate_main("generate", "a cat", "--model", "x", *args)
    assert result.code == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_guarded_generate_without_a_probe_is_a_clear_error(vgate_main, tmp_path: Path) -> None:
    result = vgate_main("generate", "a cat on a skateboard", "--model", "x", "--guarded")
    assert result.code == 2
    assert "needs a latent probe" in result.stderr and "Traceback" not in result.stderr
