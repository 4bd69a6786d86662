"""Frame detectors: the labels file, the bring-your-own ONNX classifier, NudeNet's adapter."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.videokit import BLUE, LABELS, RED, model_and_labels
from vgate.categories import CATEGORY_IDS
from vgate.detectors.frame_model import OnnxFrameDetector, load_labels, parse_labels, resize_frames
from vgate.detectors.frames import load_frame_detector
from vgate.errors import VgateError

VIOLENT = CATEGORY_IDS.index("violent_bloody")


def frames_of(*colours: tuple[int, int, int], size: tuple[int, int] = (48, 64)) -> np.ndarray:
    out = np.empty((len(colours), *size, 3), np.uint8)
    for i, colour in enumerate(colours):
        out[i] = colour
    return out


# --- labels --------------------------------------------------------------------------------------


def test_labels_defaults_and_full_form() -> None:
    spec = parse_labels(yaml.safe_load(LABELS), "l.yaml")
    assert spec.categories == {"violent_bloody": ("red",)}
    assert spec.scale == pytest.approx(1 / 255) and spec.mean == (0, 0, 0) and spec.size is None
    full = parse_labels(
        {
            "version": 1,
            "input": {
                "size": [224, 160],
                "layout": "NHWC",
                "channel_order": "BGR",
                "scale": 1,
                "mean": [1, 2, 3],
                "std": [4, 5, 6],
                "name": "x",
            },
            "output": {"name": "y", "activation": "softmax", "names": ["a", "b"]},
            "categories": {"pornographic": ["a", 1], "political": 0},
        },
        "l.yaml",
    )
    assert full.size == (224, 160) and full.layout == "NHWC" and full.channel_order == "BGR"
    assert full.categories == {"pornographic": ("a", 1), "political": (0,)}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"categories": {"nudity": [0]}}, "l.yaml: categories.nudity: unknown key"),
        ({}, "l.yaml: categories: missing"),
        ({"categories": {}}, "l.yaml: categories: expected at least one category"),
        ({"categories": {"political": [-1]}}, "l.yaml: categories.political[0]: expected an index"),
        ({"categories": {"political": ["x"]}}, "l.yaml: categories.political: output name 'x'"),
        ({"categories": {"political": 0}, "input": {"layout": "CHW"}}, "input.layout: expected"),
        ({"categories": {"political": 0}, "input": {"size": [0, 3]}}, "input.size[0]: expected"),
        ({"categories": {"political": 0}, "input": {"std": [1, 0, 1]}}, "input.std[1]: expected"),
        ({"categories": {"political": 0}, "input": {"mean": 0.5}}, "input.mean: expected a list"),
        (
            {"categories": {"political": 0}, "output": {"activation": "relu"}},
            "activation: expected",
        ),
        ({"categories": {"political": 0}, "output": {"names": ["a", "a"]}}, "must be unique"),
        ({"categories": {"political": 0}, "colour": 1}, "l.yaml: colour: unknown key"),
        ([1, 2], "l.yaml: (top level): expected a mapping"),
    ],
)
def test_labels_errors_name_the_file_and_key(data: object, message: str) -> None:
    with pytest.raises(VgateError) as info:
        parse_labels(data, "l.yaml")
    assert message in str(info.value) and "\n" not in str(info.value)


_scalars = st.none() | st.booleans() | st.integers(-3, 30) | st.floats(-2, 2) | st.text(max_size=4)
_keys = st.sampled_from(
    ["input", "output", "categories", "size", "names", "layout", "std", "red", *CATEGORY_IDS]
)
_values = _scalars | st.lists(_scalars, max_size=4) | st.dictionaries(_keys, _scalars, max_size=3)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_keys, _values | st.dictionaries(_keys, _values, max_size=3), max_size=4))
def test_any_labels_mapping_loads_or_fails_with_one_line(data: dict) -> None:
    try:
        parse_labels(data, "l.yaml")
    except VgateError as exc:
        assert str(exc).startswith("l.yaml: ") and "\n" not in str(exc)


def test_labels_file_errors(tmp_path: Path) -> None:
    with pytest.raises(VgateError, match="labels file not found"):
        load_labels(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("categories: [\n", encoding="utf-8")
    with pytest.raises(VgateError, match=r"bad\.yaml: not valid YAML \(line"):
        load_labels(bad)


# --- the ONNX frame classifier -------------------------------------------------------------------


def test_scores_map_outputs_to_categories(tmp_path: Path) -> None:
    detector = OnnxFrameDetector(*model_and_labels(tmp_path))
    assert detector.input_size == (16, 16)  # from the model's fixed input
    scores = detector.detect_frames(frames_of(RED, BLUE, (0, 0, 0))).scores
    assert scores.shape == (3, 5) and scores.dtype == np.float32
    assert scores[0, VIOLENT] > 0.95 and scores[1, VIOLENT] < 0.01
    assert np.count_nonzero(np.delete(scores, VIOLENT, axis=1)) == 0


def test_several_outputs_feed_one_category_by_max(tmp_path: Path) -> None:
    labels = LABELS.replace("violent_bloody: [red]", "violent_bloody: [red, 1]")
    detector = OnnxFrameDetector(*model_and_labels(tmp_path, labels))
    scores = detector.detect_frames(frames_of(RED, BLUE)).scores
    assert scores[0, VIOLENT] > 0.95 and scores[1, VIOLENT] > 0.9  # blue via column 1


def test_bgr_channel_order_swaps_red_and_blue(tmp_path: Path) -> None:
    labels = LABELS.replace("channel_order: RGB", "channel_order: BGR")
    detector = OnnxFrameDetector(*model_and_labels(tmp_path, labels))
    scores = detector.detect_frames(frames_of(RED, BLUE)).scores
    assert scores[0, VIOLENT] < 0.05 and scores[1, VIOLENT] > 0.9


def test_nhwc_layout_dynamic_size_and_softmax(tmp_path: Path) -> None:
    labels = (
        "input: {layout: NHWC, size: [24, 32]}\n"
        "output: {activation: softmax}\n"
        "categories: {violent_bloody: 0, terrifying: 1}\n"
    )
    detector = OnnxFrameDetector(*model_and_labels(tmp_path, labels, layout="NHWC", fixed=False))
    assert detector.input_size == (24, 32)
    scores = detector.detect_frames(frames_of(RED, BLUE)).scores
    assert np.allclose(scores[:, VIOLENT] + scores[:, CATEGORY_IDS.index("terrifying")], 1)
    assert scores[0, VIOLENT] > 0.9 and scores[1, VIOLENT] < 0.1


def test_mean_and_std_are_applied(tmp_path: Path) -> None:
    # scale 1/255 then (x - 0.5) / 0.5: red 0.86 -> 0.73, logit 10 * 0.73 - 5 = 2.3
    labels = LABELS.replace("output:", "  mean: [0.5, 0.5, 0.5]\n  std: [0.5, 0.5, 0.5]\noutput:")
    detector = OnnxFrameDetector(*model_and_labels(tmp_path, labels))
    red = detector.detect_frames(frames_of(RED)).scores[0, VIOLENT]
    expected = 1 / (1 + np.exp(-(10 * ((220 / 255 - 0.5) / 0.5) - 5)))
    assert red == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(
    ("labels", "model", "message"),
    [
        ("categories: {political: 5}\n", {}, "uses column 5 but the output has 2 columns"),
        (
            "output: {names: [a, b, c]}\ncategories: {political: a}\n",
            {},
            "output logits has 2 columns but output.names lists 3",
        ),
        ("input: {size: [8, 8]}\ncategories: {political: 0}\n", {}, "differs from input.size"),
        ("categories: {political: 0}\n", {"fixed": False}, "set input.size"),
        ("input: {layout: NHWC}\ncategories: {political: 0}\n", {}, "expected 3"),
    ],
)
def test_model_and_labels_must_agree(
    tmp_path: Path, labels: str, model: dict, message: str
) -> None:
    with pytest.raises(VgateError) as info:
        OnnxFrameDetector(*model_and_labels(tmp_path, labels, **model))
    assert message in str(info.value) and "frames.onnx" in str(info.value)


def test_missing_or_corrupt_model_file(tmp_path: Path) -> None:
    _, labels = model_and_labels(tmp_path)
    with pytest.raises(VgateError, match="file not found"):
        OnnxFrameDetector(tmp_path / "none.onnx", labels)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    with pytest.raises(VgateError, match="not a loadable ONNX model"):
        OnnxFrameDetector(junk, labels)
    with pytest.raises(VgateError, match="needs a labels file"):
        load_frame_detector(str(junk), None)


# --- resizing ------------------------------------------------------------------------------------


def test_resize_frames_keeps_flat_colours_and_averages_down() -> None:
    frames = frames_of(RED, BLUE, size=(480, 640))
    small = resize_frames(frames, (12, 16))
    assert small.shape == (2, 12, 16, 3)
    assert np.array_equal(small[0], np.broadcast_to(RED, (12, 16, 3)))
    stripes = np.zeros((1, 8, 8, 3), np.uint8)
    stripes[:, :, ::2] = 255  # one-pixel stripes average to grey, not alias to black/white
    assert abs(int(resize_frames(stripes, (2, 2))[0, 0, 0, 0]) - 128) <= 2
    assert resize_frames(frames, (480, 640)) is frames


# --- NudeNet (optional, installed by the user) ---------------------------------------------------


def test_nudenet_is_optional_and_explains_its_licence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nudenet", None)
    with pytest.raises(VgateError) as info:
        load_frame_detector("nudenet", None)
    assert "AGPL-3.0" in str(info.value) and "pip install nudenet" in str(info.value)


def test_nudenet_adapter_maps_exposed_classes_to_pornographic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[np.ndarray] = []

    class FakeNudeDetector:
        def detect_batch(self, images: list[np.ndarray], batch_size: int = 4) -> list[list]:
            seen.extend(images)
            return [
                [{"class": "FACE_FEMALE", "score": 0.9}, {"class": "BELLY_EXPOSED", "score": 0.8}],
                [
                    {"class": "FEMALE_BREAST_EXPOSED", "score": 0.7},
                    {"class": "BUTTOCKS_EXPOSED", "score": 0.6},
                ],
            ]

    monkeypatch.setitem(
        sys.modules, "nudenet", types.SimpleNamespace(NudeDetector=FakeNudeDetector)
    )
    detector = load_frame_detector("nudenet", None)
    scores = detector.detect_frames(frames_of(RED, BLUE)).scores
    porn = CATEGORY_IDS.index("pornographic")
    assert scores[:, porn].tolist() == pytest.approx([0.0, 0.7])
    assert np.count_nonzero(np.delete(scores, porn, axis=1)) == 0
    assert tuple(seen[0][0, 0]) == RED[::-1]  # NudeNet reads BGR, as cv2.imread gives
