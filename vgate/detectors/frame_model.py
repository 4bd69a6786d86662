"""Bring-your-own ONNX frame classifier, mapped to the five categories by a labels YAML.

::

    input:
      size: [224, 224]          # [height, width]; default: the model's fixed input size
      layout: NCHW              # NCHW | NHWC
      channel_order: RGB        # RGB | BGR
      scale: 0.00392156862745098  # pixels (0..255) are multiplied by this (default 1/255) ...
      mean: [0.485, 0.456, 0.406] # ... then (x - mean) / std, per channel in the model's order
      std: [0.229, 0.224, 0.225]
    output:
      activation: softmax       # sigmoid | softmax | none (outputs are already 0..1)
      names: [drawing, hentai, neutral, porn, sexy]   # optional names of the output columns
    categories:                 # category: output columns by name or 0-based index; max taken
      pornographic: [porn, hentai]

Every key is validated; a problem names the file and the key path. Categories not listed
score 0. Frames are stretched to the input size (no letterbox).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vgate.categories import CATEGORY_IDS
from vgate.detectors.base import Detection
from vgate.errors import ModelError
from vgate.policy.schema import (
    check_choice,
    check_keys,
    check_mapping,
    check_number,
    check_string,
    fail,
    kind,
    read_yaml_file,
)
from vgate.resources import default_threads

LAYOUTS = ("NCHW", "NHWC")
CHANNEL_ORDERS = ("RGB", "BGR")
ACTIVATIONS = ("sigmoid", "softmax", "none")
BATCH_SIZE = 32
MAX_INPUT_SIDE = 4096
_TOP_KEYS = {
    "version": "the labels schema version, 1",
    "input": "input options: size, layout, channel_order, scale, mean, std, name",
    "output": "output options: activation, names, name",
    "categories": "a mapping of category to output columns (names or indices)",
}
_INPUT_KEYS = {
    "name": "the input tensor's name",
    "size": "[height, width] in pixels",
    "layout": "NCHW or NHWC",
    "channel_order": "RGB or BGR",
    "scale": "a factor applied to 0..255 pixel values",
    "mean": "three numbers subtracted per channel",
    "std": "three positive numbers dividing per channel",
}
_OUTPUT_KEYS = {
    "name": "the output tensor's name",
    "activation": "sigmoid, softmax or none",
    "names": "a list of the output columns' names",
}


@dataclass(frozen=True)
class LabelsSpec:
    """A validated labels file."""

    categories: dict[str, tuple[int | str, ...]]
    size: tuple[int, int] | None = None
    layout: str = "NCHW"
    channel_order: str = "RGB"
    scale: float = 1 / 255
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    input_name: str | None = None
    output_name: str | None = None
    activation: str = "none"
    names: tuple[str, ...] | None = None
    columns: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """Filled when resolved against a model: category -> output column indices."""


def _triple(name: str, key: str, value: object, low: float) -> tuple[float, float, float]:
    if not isinstance(value, list) or len(value) != 3:
        raise fail(name, key, f"expected a list of three numbers, got {kind(value)}")
    for i, item in enumerate(value):
        check_number(name, f"{key}[{i}]", item, low, 1e6)
    return (float(value[0]), float(value[1]), float(value[2]))


def _size(name: str, key: str, value: object) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise fail(name, key, f"expected [height, width], got {kind(value)}")
    height = check_number(name, f"{key}[0]", value[0], 1, MAX_INPUT_SIDE, integer=True)
    width = check_number(name, f"{key}[1]", value[1], 1, MAX_INPUT_SIDE, integer=True)
    return int(height), int(width)


def _columns(name: str, key: str, value: object) -> tuple[int | str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise fail(name, key, "expected at least one output column")
    out: list[int | str] = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]" if isinstance(value, list) else key
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise fail(name, where, f"expected an output index or name, got {kind(item)}")
        if isinstance(item, int) and item < 0:
            raise fail(name, where, f"expected an index from 0, got {item}")
        if isinstance(item, str):
            check_string(name, where, item)
        out.append(item)
    return tuple(out)


def parse_labels(data: object, name: str) -> LabelsSpec:
    """Validate a labels mapping read from file ``name``."""
    top = check_mapping(name, "(top level)", data)
    check_keys(name, "", top, _TOP_KEYS)
    if "version" in top and (type(top["version"]) is not int or top["version"] != 1):
        raise fail(name, "version", f"expected 1, got {top['version']!r}")
    if "categories" not in top:
        raise fail(name, "categories", "missing; map at least one category to output columns")
    cats = check_mapping(name, "categories", top["categories"])
    check_keys(name, "categories", cats, dict.fromkeys(CATEGORY_IDS, ""))
    if not cats:
        raise fail(name, "categories", "expected at least one category")
    categories = {cid: _columns(name, f"categories.{cid}", v) for cid, v in cats.items()}
    inp = check_mapping(name, "input", top.get("input", {}))
    check_keys(name, "input", inp, _INPUT_KEYS)
    out = check_mapping(name, "output", top.get("output", {}))
    check_keys(name, "output", out, _OUTPUT_KEYS)
    names = out.get("names")
    if names is not None:
        if not isinstance(names, list) or not names:
            raise fail(name, "output.names", f"expected a non-empty list, got {kind(names)}")
        for i, item in enumerate(names):
            check_string(name, f"output.names[{i}]", item)
        if len(set(names)) != len(names):
            raise fail(name, "output.names", "names must be unique")
    for cid, cols in categories.items():
        for col in cols:
            if isinstance(col, str) and col not in (names or ()):
                raise fail(
                    name,
                    f"categories.{cid}",
                    f"output name {col!r} is not in output.names"
                    + ("" if names else " (add output.names, or use a 0-based index)"),
                )
    spec: dict[str, Any] = {"categories": categories}
    if "size" in inp:
        spec["size"] = _size(name, "input.size", inp["size"])
    if "layout" in inp:
        spec["layout"] = check_choice(name, "input.layout", inp["layout"], LAYOUTS)
    if "channel_order" in inp:
        order = inp["channel_order"]
        spec["channel_order"] = check_choice(name, "input.channel_order", order, CHANNEL_ORDERS)
    if "scale" in inp:
        spec["scale"] = float(check_number(name, "input.scale", inp["scale"], 0, 1e6))
    if "mean" in inp:
        spec["mean"] = _triple(name, "input.mean", inp["mean"], -1e6)
    if "std" in inp:
        spec["std"] = _triple(name, "input.std", inp["std"], 1e-9)
    if inp.get("name") is not None:
        spec["input_name"] = check_string(name, "input.name", inp["name"])
    if out.get("name") is not None:
        spec["output_name"] = check_string(name, "output.name", out["name"])
    if "activation" in out:
        spec["activation"] = check_choice(name, "output.activation", out["activation"], ACTIVATIONS)
    if names is not None:
        spec["names"] = tuple(names)
    return LabelsSpec(**spec)


def load_labels(path: str | Path) -> LabelsSpec:
    """Read and validate a labels YAML file."""
    name = str(path)
    data = read_yaml_file(Path(path), name, "labels")
    return parse_labels(data, name)


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


class OnnxFrameDetector:
    """An ONNX image classifier ``[n, 3, H, W]`` (or NHWC) -> ``[n, K]``, mapped by labels."""

    name = "frame-model"

    def __init__(self, model_path: str | Path, labels_path: str | Path) -> None:
        self.spec = load_labels(labels_path)
        self.model_path = Path(model_path).expanduser()
        self.session = self._session()
        self._resolve()

    def _session(self) -> Any:
        import onnxruntime as ort

        from vgate.detectors.prompt_model import MAX_THREADS

        path = self.model_path
        if not path.is_file():
            raise ModelError(f"frame model {path}: file not found")
        options = ort.SessionOptions()
        options.intra_op_num_threads = default_threads(MAX_THREADS)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            return ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own, undocumented classes
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"frame model {path}: not a loadable ONNX model ({first})") from None

    def _resolve(self) -> None:
        """Check the model's input and output against the labels; fix size and columns."""
        spec, where = self.spec, f"frame model {self.model_path}"
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        inp = inputs.get(spec.input_name) if spec.input_name else next(iter(inputs.values()))
        if inp is None:
            raise ModelError(f"{where}: no input named {spec.input_name!r} ({', '.join(inputs)})")
        out = outputs.get(spec.output_name) if spec.output_name else next(iter(outputs.values()))
        if out is None:
            raise ModelError(
                f"{where}: no output named {spec.output_name!r} ({', '.join(outputs)})"
            )
        self.input_name, self.output_name = inp.name, out.name
        shape = list(inp.shape)
        if len(shape) != 4:
            raise ModelError(f"{where}: expected a 4-d image input, got shape {shape}")
        channel_axis, spatial = (1, (2, 3)) if spec.layout == "NCHW" else (3, (1, 2))
        if isinstance(shape[channel_axis], int) and shape[channel_axis] != 3:
            raise ModelError(
                f"{where}: input {inp.name} has {shape[channel_axis]} channels on the "
                f"{spec.layout} channel axis; expected 3 (check input.layout in the labels)"
            )
        fixed = tuple(shape[a] for a in spatial)
        size = spec.size
        if all(isinstance(d, int) and d > 0 for d in fixed):
            if size is not None and tuple(size) != fixed:
                raise ModelError(
                    f"{where}: input size {list(fixed)} differs from input.size {list(size)}"
                )
            size = (int(fixed[0]), int(fixed[1]))
        if size is None:
            raise ModelError(
                f"{where}: the input has no fixed size; set input.size: [height, width] "
                "in the labels file"
            )
        self.input_size: tuple[int, int] | None = size
        self.batch = 1 if shape[0] == 1 else BATCH_SIZE
        self.input_type = inp.type
        width = out.shape[-1] if out.shape and isinstance(out.shape[-1], int) else None
        if spec.names is not None and width is not None and len(spec.names) != width:
            raise ModelError(
                f"{where}: output {out.name} has {width} columns but output.names lists "
                f"{len(spec.names)}"
            )
        columns: dict[str, tuple[int, ...]] = {}
        for cid, cols in spec.categories.items():
            idx = tuple(_column(spec.names, c) for c in cols)
            if width is not None and max(idx) >= width:
                raise ModelError(
                    f"{where}: categories.{cid} uses column {max(idx)} but the output "
                    f"has {width} columns"
                )
            columns[cid] = idx
        self.columns = columns

    def _prepare(self, frames: np.ndarray) -> np.ndarray:
        spec = self.spec
        assert self.input_size is not None
        frames = resize_frames(frames, self.input_size)
        if spec.channel_order == "BGR":
            frames = frames[..., ::-1]
        if self.input_type == "tensor(uint8)":
            x: np.ndarray = np.ascontiguousarray(frames)
        else:
            x = frames.astype(np.float32) * np.float32(spec.scale)
            x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
            if self.input_type == "tensor(float16)":
                x = x.astype(np.float16)
        if spec.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x)

    def _run(self, frames: np.ndarray) -> np.ndarray:
        out = self.session.run([self.output_name], {self.input_name: self._prepare(frames)})[0]
        out = np.asarray(out, dtype=np.float32).reshape(len(frames), -1)
        if self.spec.activation == "sigmoid":
            out = 1 / (1 + np.exp(-out))
        elif self.spec.activation == "softmax":
            out = _softmax(out)
        return out

    def detect_frames(self, frames: np.ndarray) -> Detection:
        """Scores ``[n, 5]``: per category the max of its mapped columns, clipped to 0..1."""
        n = len(frames)
        scores = np.zeros((n, len(CATEGORY_IDS)), dtype=np.float32)
        for start in range(0, n, self.batch):
            chunk = frames[start : start + self.batch]
            try:
                out = self._run(chunk)
            except Exception as exc:  # a shape the model refuses, at run time
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else "failed"
                raise ModelError(
                    f"frame model {self.model_path}: inference failed ({first})"
                ) from None
            for cid, idx in self.columns.items():
                if max(idx) >= out.shape[1]:
                    raise ModelError(
                        f"frame model {self.model_path}: categories.{cid} uses column "
                        f"{max(idx)} but the output has {out.shape[1]} columns"
                    )
                col = CATEGORY_IDS.index(cid)
                scores[start : start + len(chunk), col] = out[:, list(idx)].max(axis=1)
        return Detection(np.clip(scores, 0.0, 1.0))


def _axis_weights(size: int, out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices (low, high) and weights of high for linear resampling along one axis."""
    centers = (np.arange(out, dtype=np.float64) + 0.5) * size / out - 0.5
    centers = np.clip(centers, 0, size - 1)
    low = np.floor(centers).astype(np.intp)
    high = np.minimum(low + 1, size - 1)
    return low, high, (centers - low).astype(np.float32)


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Frames ``[n, H, W, C]`` uint8 resized to ``size`` = (height, width): box-averaged down
    by whole factors first (no aliasing on big reductions), then bilinear."""
    height, width = size
    n, h, w, c = frames.shape
    if (h, w) == (height, width):
        return frames
    fy, fx = max(1, h // (2 * height)), max(1, w // (2 * width))
    data = frames.astype(np.float32)
    if fy > 1 or fx > 1:
        h2, w2 = h // fy * fy, w // fx * fx
        data = data[:, :h2, :w2].reshape(n, h2 // fy, fy, w2 // fx, fx, c).mean(axis=(2, 4))
        h, w = h2 // fy, w2 // fx
    y0, y1, wy = _axis_weights(h, height)
    x0, x1, wx = _axis_weights(w, width)
    rows = data[:, y0] * (1 - wy)[None, :, None, None] + data[:, y1] * wy[None, :, None, None]
    out = rows[:, :, x0] * (1 - wx)[None, None, :, None] + rows[:, :, x1] * wx[None, None, :, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _column(names: tuple[str, ...] | None, column: str | int) -> int:
    """The index of an output column given by name (validated against ``names``) or index."""
    if isinstance(column, str):
        assert names is not None  # the labels' validation requires names for named columns
        return names.index(column)
    return column
