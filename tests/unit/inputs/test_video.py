"""The video reader: sampling times, seeking, frames per container, text side, bad inputs."""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.videokit import make_audio, make_video
from vgate.errors import InputError
from vgate.inputs import expand_paths, iter_inputs
from vgate.inputs.video import (
    MAX_SIDE,
    VideoItem,
    VideoReader,
    fit_size,
    sample_times,
)

# --- sampling times ------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    duration=st.floats(0.01, 7200),
    frames=st.integers(1, 500),
    fps=st.one_of(st.none(), st.floats(0.01, 60)),
)
def test_sample_times_are_increasing_inside_the_video(
    duration: float, frames: int, fps: float | None
) -> None:
    times = sample_times(duration, frames=frames, fps=fps, max_frames=1000)
    assert 1 <= len(times) <= 1000
    assert all(0 <= t < duration for t in times)
    assert all(b > a for a, b in pairwise(times))
    if fps is None:
        assert len(times) == frames
    elif duration * fps <= 1000:
        assert len(times) == max(1, math.floor(duration * fps + 1e-9))


def test_sample_times_uniform_and_fps() -> None:
    assert sample_times(4.0, frames=4) == [0.5, 1.5, 2.5, 3.5]
    assert sample_times(1.0, fps=4) == [0.125, 0.375, 0.625, 0.875]
    assert sample_times(0.1, fps=1) == [0.05]  # shorter than one interval: one sample
    assert sample_times(100.0, fps=30, max_frames=10) == sample_times(100.0, frames=10)
    assert sample_times(0.0, frames=3) == [] and sample_times(float("nan"), frames=3) == []


def test_fit_size_keeps_aspect_and_small_frames() -> None:
    assert fit_size(64, 48) == (64, 48)
    assert fit_size(7680, 4320) == (MAX_SIDE, 288)
    assert max(fit_size(100_000, 3)) <= MAX_SIDE


# --- reading frames ------------------------------------------------------------------------------


def _is_red(image: np.ndarray) -> bool:
    return bool(image[..., 0].mean() > 150 and image[..., 2].mean() < 80)


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".mov", ".mkv", ".gif"])
def test_frames_at_sample_times_in_every_container(tmp_path: Path, suffix: str) -> None:
    path = make_video(tmp_path / f"clip{suffix}")
    with VideoReader(path, path.name) as reader:
        assert reader.info.duration == pytest.approx(4.0, abs=0.11)
        assert (reader.info.width, reader.info.height) == (64, 48)
        frames = list(reader.frames(sample_times(reader.info.duration, fps=10)))
    assert [round(f.time, 2) for f in frames] == [round(i / 10, 2) for i in range(40)]
    assert [i for i, f in enumerate(frames) if _is_red(f.image)] == list(range(15, 25))
    assert all(f.duration == pytest.approx(0.1, abs=1e-3) for f in frames)
    assert all(f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in frames)


def test_frames_are_scaled_to_the_requested_size(tmp_path: Path) -> None:
    path = make_video(tmp_path / "clip.mp4")
    with VideoReader(path, "clip.mp4") as reader:
        (frame,) = reader.frames([2.0], size=(16, 8))
    assert frame.image.shape == (8, 16, 3) and _is_red(frame.image)


def test_a_frame_shown_at_two_sample_times_is_returned_once(tmp_path: Path) -> None:
    path = make_video(tmp_path / "clip.mp4", frames=10, fps=2)  # 5 s at 2 fps
    with VideoReader(path, "clip.mp4") as reader:
        times = [f.time for f in reader.frames(sample_times(reader.info.duration, fps=10))]
    assert times == [i / 2 for i in range(10)]


def test_sparse_samples_seek_instead_of_decoding_everything(tmp_path: Path) -> None:
    """60 s at 10 fps with a keyframe every second: 6 samples decode about 6 x 5 frames."""
    path = make_video(tmp_path / "long.mp4", frames=600, fps=10, gop=10, red=range(0))
    with VideoReader(path, "long.mp4") as reader:
        decoded = 0
        original = reader._decoded

        def counting():
            nonlocal decoded
            for frame in original():
                decoded += 1
                yield frame

        reader._decoded = counting  # type: ignore[method-assign]
        frames = list(reader.frames(sample_times(reader.info.duration, frames=6)))
    assert [round(f.time, 1) for f in frames] == [5.0, 15.0, 25.0, 35.0, 45.0, 55.0]
    assert decoded < 100, decoded  # 600 without seeking


def test_dense_samples_decode_forward_without_seeking(tmp_path: Path) -> None:
    path = make_video(tmp_path / "clip.mp4", frames=100, fps=10, gop=50)
    with VideoReader(path, "clip.mp4") as reader:
        seeks = []
        original = reader._seek
        reader._seek = lambda t: seeks.append(t) or original(t)  # type: ignore[method-assign]
        frames = list(reader.frames(sample_times(reader.info.duration, fps=5)))
    assert len(frames) == 50 and seeks == []


# --- text side -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_metadata_and_subtitle_cues(tmp_path: Path, suffix: str) -> None:
    path = make_video(
        tmp_path / f"clip{suffix}",
        metadata={"title": "Summer trailer", "comment": "blood on the knife", "encoder": "x"},
        subtitles=[(0.5, 1.0, "hello there"), (2.0, 3.5, "{\\i1}kill{\\i0} them\\Nall")],
    )
    with VideoReader(path, path.name) as reader:
        parts = [(p.part, p.text, p.start_s, p.end_s) for p in reader.text_parts()]
    assert parts == [
        ("metadata:title", "Summer trailer", None, None),
        ("metadata:comment", "blood on the knife", None, None),
        ("subtitle", "hello there", 0.5, 1.0),
        ("subtitle", "kill them all", 2.0, 3.5),
    ]


# --- bad inputs ----------------------------------------------------------------------------------


def _error(path: Path) -> str:
    with pytest.raises(InputError) as info:
        VideoReader(path, path.name)
    message = str(info.value)
    assert message.startswith(f"{path.name}: ") and "\n" not in message
    return message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    assert "empty file" in _error(path)


def test_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "fake.mp4"
    path.write_bytes(b"this is not a video at all\n" * 50)
    assert "not a readable video" in _error(path)


def test_truncated_mp4_without_its_index(tmp_path: Path) -> None:
    data = make_video(tmp_path / "clip.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the moov box is at the end: nothing to index
    assert "truncated, corrupt or not a video" in _error(cut)


def test_truncated_mkv_is_read_in_part(tmp_path: Path) -> None:
    data = make_video(tmp_path / "clip.mkv", noise=True, gop=5).read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    with VideoReader(cut, "cut.mkv") as reader:
        frames = list(reader.frames(sample_times(reader.info.duration, fps=10)))
        problems = reader.problems
    assert 5 <= len(frames) < 40
    assert problems and "truncated or corrupt" in problems[-1]


def test_audio_only(tmp_path: Path) -> None:
    assert "no video stream (audio only)" in _error(make_audio(tmp_path / "song.mp4"))


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_zero_length_video(tmp_path: Path, suffix: str) -> None:
    assert "zero-length" in _error(make_video(tmp_path / f"zero{suffix}", frames=0))


def test_unsupported_codec(tmp_path: Path) -> None:
    data = make_video(tmp_path / "clip.mp4").read_bytes()
    assert data.count(b"avc1") >= 1
    odd = tmp_path / "odd.mp4"
    odd.write_bytes(data.replace(b"avc1", b"zzzz"))  # a sample entry no decoder knows
    assert "unsupported or unknown video codec" in _error(odd)


def test_huge_resolution_is_downscaled_before_the_detector(tmp_path: Path) -> None:
    path = make_video(tmp_path / "big.mp4", frames=3, fps=1, size=(4096, 2160), red=range(3))
    with VideoReader(path, "big.mp4") as reader:
        frames = list(reader.frames(sample_times(reader.info.duration, frames=3)))
    assert [f.image.shape for f in frames] == [(270, 512, 3)] * 3
    assert all(_is_red(f.image) for f in frames)


# --- inputs --------------------------------------------------------------------------------------


def test_directories_list_videos_beside_prompts(tmp_path: Path) -> None:
    root = tmp_path / "in"
    make_video(root / "b.mp4", frames=2)
    (root / "a.txt").write_text("a cat\n", encoding="utf-8")
    (root / "notes.md").write_text("x\n", encoding="utf-8")
    names = [Path(item[0]).name for item in expand_paths([str(root)])]  # type: ignore[index]
    assert names == ["a.txt", "b.mp4"]
    items = list(iter_inputs([str(root)]))
    assert isinstance(items[-1], VideoItem) and items[-1].path.name == "b.mp4"
    assert [type(i).__name__ for i in items] == ["Record", "VideoItem"]
