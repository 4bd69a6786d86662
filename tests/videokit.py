"""Small videos and a tiny ONNX frame classifier, made in code for the video tests.

``make_video`` writes a 64x48 clip: blue frames, with red frames in ``red`` (frame indices), so
that ``redness_model`` (mean red -> sigmoid, mapped to violent_bloody) flags exactly those.
"""

from __future__ import annotations

import fractions
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

BLUE = (0, 0, 200)
RED = (220, 10, 10)
ASS_HEADER = (
    "[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize, "
    "PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, "
    "StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, "
    "MarginL, MarginR, MarginV, Encoding\nStyle: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,"
    "0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n[Events]\nFormat: Layer, Start, End, Style, Name, "
    "MarginL, MarginR, MarginV, Effect, Text\n"
)
CODECS = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9"}


def frame_pixels(index: int, red: range, size: tuple[int, int], noise: bool = False) -> np.ndarray:
    """One frame: red inside ``red``, else blue; optional noise (bigger, less compressible)."""
    width, height = size
    image = np.empty((height, width, 3), np.uint8)
    image[...] = RED if index in red else BLUE
    if noise:
        rng = np.random.default_rng(index)
        image[: height // 2] = rng.integers(0, 256, (height // 2, width, 3), dtype=np.uint8)
    return image


def make_video(
    path: Path,
    *,
    frames: int = 40,
    fps: int = 10,
    red: range = range(15, 25),
    size: tuple[int, int] = (64, 48),
    metadata: dict[str, str] | None = None,
    subtitles: Sequence[tuple[float, float, str]] = (),
    gop: int = 10,
    noise: bool = False,
    codec: str | None = None,
) -> Path:
    """Write a clip (container from the suffix; gif too) and return its path.

    ``subtitles``: (start s, end s, text) cues as a text subtitle stream (mov_text in mp4/mov,
    subrip in mkv).
    """
    import av

    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    container = av.open(str(path), "w")
    container.metadata.update(metadata or {})
    is_gif = suffix == ".gif"
    stream = container.add_stream(codec or ("gif" if is_gif else CODECS[suffix]), rate=fps)
    stream.width, stream.height = size
    stream.pix_fmt = "rgb8" if is_gif else "yuv420p"
    if stream.codec_context.name == "libx264":
        stream.options = {"g": str(gop), "preset": "ultrafast"}
    sub_stream = None
    if subtitles:
        sub_stream = container.add_stream("subrip" if suffix == ".mkv" else "mov_text")
        sub_stream.codec_context.subtitle_header = ASS_HEADER.encode()
    time_base = fractions.Fraction(1, fps)
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(frame_pixels(i, red, size, noise), format="rgb24")
        frame.pts, frame.time_base = i, time_base
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    if not frames:
        container.start_encoding()  # a header with a video stream and no frames
    for start, end, text in sorted(subtitles):
        data = text.encode()
        if suffix != ".mkv":
            data = struct.pack(">H", len(data)) + data
        packet = av.Packet(data)
        packet.stream = sub_stream
        packet.time_base = fractions.Fraction(1, 1000)
        packet.pts = packet.dts = round(start * 1000)
        packet.duration = round((end - start) * 1000)
        container.mux(packet)
    container.close()
    return path


def make_audio(path: Path, seconds: float = 1.0) -> Path:
    """An audio-only file (AAC in mp4)."""
    import av

    container = av.open(str(path), "w")
    stream = container.add_stream("aac", rate=16000)
    samples = int(16000 * seconds)
    chunk = 1024
    for start in range(0, samples, chunk):
        data = np.zeros((1, chunk), np.float32)
        frame = av.AudioFrame.from_ndarray(data, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def redness_model(
    path: Path, *, size: int = 16, layout: str = "NCHW", fixed: bool = True, outputs: int = 2
) -> Path:
    """An ONNX classifier: global average pool -> [N, 3] -> logits [N, 2] = (10 r - 5,
    10 b - 5), so column 0 is "red" and column 1 is "blue" after a sigmoid."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    spatial = [size, size] if fixed else ["H", "W"]
    shape = ["N", 3, *spatial] if layout == "NCHW" else ["N", *spatial, 3]
    nodes = []
    name = "pixels"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", ["pixels"], ["nchw"], perm=[0, 3, 1, 2]))
        name = "nchw"
    weights = np.zeros((3, outputs), np.float32)
    weights[0, 0] = 10.0
    weights[2, 1 % outputs] = 10.0
    bias = np.full((outputs,), -5.0, np.float32)
    nodes += [
        helper.make_node("GlobalAveragePool", [name], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], ["mm"]),
        helper.make_node("Add", ["mm", "b"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "redness",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", outputs])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


LABELS = """\
input:
  layout: NCHW
  channel_order: RGB
output:
  activation: sigmoid
  names: [red, blue]
categories:
  violent_bloody: [red]
"""


def model_and_labels(directory: Path, labels: str = LABELS, **model: object) -> tuple[str, str]:
    """Write the redness model and a labels file into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    onnx_path = redness_model(directory / "frames.onnx", **model)  # type: ignore[arg-type]
    labels_path = directory / "labels.yaml"
    labels_path.write_text(labels, encoding="utf-8")
    return str(onnx_path), str(labels_path)
