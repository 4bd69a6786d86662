"""The exported LVD probe under onnxruntime (CUDA or CPU); numpy and onnxruntime only.

``ProbeRuntime("builtin:<name>" | directory | directory/probe.onnx)`` reads ``probe.json``, opens
one session per graph (``probe.onnx``, or ``probe-stepNNN.onnx`` for per-step probes) and scores
x̂₀ ``[B, C, F, H, W]`` at a sampling step.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vgate.categories import CATEGORY_IDS
from vgate.errors import ModelError, VgateError, first_line
from vgate.resources import default_threads, shipped_dir

BUILTIN_PREFIX = "builtin:"
PROBE_JSON = "probe.json"
PROBE_FORMAT = 1
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")
MAX_THREADS = 4


def resolve_probe(ref: str | Path) -> tuple[Path, bool]:
    """(probe directory, is builtin) for ``builtin:<name>``, a directory or a ``.onnx`` file."""
    text = str(ref)
    if text.startswith(BUILTIN_PREFIX):
        name = text[len(BUILTIN_PREFIX) :]
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise ModelError(f"bad probe reference {text!r}: expected builtin:<name> or a path")
        return shipped_dir("models") / name, True
    path = Path(text).expanduser()
    if path.suffix == ".onnx":
        return path.parent, False
    return path, False


def _device_parts(device: str) -> tuple[str, int]:
    kind, _, index = str(device).partition(":")
    if kind not in DEVICES or (index and (kind != "cuda" or not index.isdigit())):
        raise VgateError(f"unknown probe device {device!r}: expected auto, cpu, cuda or cuda:N")
    return kind, int(index or 0)


def providers_for(device: str) -> list[str]:
    """onnxruntime providers for ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``.

    ``cuda`` (or ``cuda:N``) requires the CUDA provider and fails clearly without it.
    """
    import onnxruntime as ort

    kind, _ = _device_parts(device)
    available = ort.get_available_providers()
    if kind == "cpu":
        return [CPU]
    if CUDA in available:
        return [CUDA, CPU]
    if kind == "cuda":
        raise VgateError(
            "the probe device is cuda but onnxruntime has no CUDA provider; "
            "install vgate[gpu] (onnxruntime-gpu)"
        )
    return [CPU]


class ProbeRuntime:
    """An exported probe: metadata from ``probe.json`` and one onnxruntime session per graph."""

    def __init__(self, path: str | Path, device: str = "auto", threads: int | None = None) -> None:
        self.ref = str(path)
        self.directory, builtin = resolve_probe(path)
        self.hint = (
            "reinstall vgate to restore the shipped probe"
            if builtin
            else "train it again with 'vgate probe train <collection> --out DIR'"
        )
        self.meta = self._read_meta()
        self.mode: str = self.meta["mode"]
        self.latent_channels: int = int(self.meta["latent_channels"])
        self.pipeline: str = str(self.meta.get("pipeline", ""))
        self.steps: tuple[int, ...] = tuple(int(s) for s in self.meta["steps"])
        self.timesteps: tuple[float, ...] = tuple(float(t) for t in self.meta["timesteps"])
        self.num_inference_steps = int(self.meta.get("num_inference_steps", 0))
        self._device_kind, self._device_index = _device_parts(device)
        self._threads = threads
        requested = providers_for(device)
        self._sessions = {
            key: self._open(name, requested) for key, name in self.meta["graphs"].items()
        }
        # what onnxruntime runs on: "auto" falls back to the CPU when CUDA fails to start
        self.providers: list[str] = next(iter(self._sessions.values())).get_providers()

    # --- loading ---------------------------------------------------------------------------

    def _read_meta(self) -> dict[str, Any]:
        path = self.directory / PROBE_JSON
        if not self.directory.is_dir():
            raise ModelError(f"probe directory {self.directory} not found; {self.hint}")
        if not path.is_file():
            raise ModelError(f"probe file {path} is missing; {self.hint}")
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            if meta.get("format_version") != PROBE_FORMAT:
                raise ValueError(f"format version {meta.get('format_version')!r}")
            if list(meta["categories"]) != list(CATEGORY_IDS):
                raise ValueError(f"categories {meta['categories']} != {list(CATEGORY_IDS)}")
            if meta["mode"] not in ("shared", "per-step"):
                raise ValueError(f"unknown mode {meta['mode']!r}")
            if int(meta["latent_channels"]) < 1 or len(meta["steps"]) != len(meta["timesteps"]):
                raise ValueError("bad latent_channels, steps or timesteps")
            graphs = meta["graphs"]
            if not isinstance(graphs, dict) or not graphs:
                raise ValueError("no graphs")
            for key, name in graphs.items():
                wanted = key == "*" if meta["mode"] == "shared" else str(key).isdigit()
                if not wanted or not isinstance(name, str) or Path(name).name != name:
                    raise ValueError(f"bad graph entry {key!r}: {name!r}")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ModelError(
                f"probe file {path} is invalid ({first_line(exc, limit=160)}); {self.hint}"
            ) from None
        return meta

    def _open(self, name: str, requested: list[str]) -> Any:
        import onnxruntime as ort

        path = self.directory / name
        if not path.is_file():
            raise ModelError(f"probe file {path} is missing; {self.hint}")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # the probe runs a few times per video: idle threads should sleep, not spin
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.intra_op_num_threads = self._threads or default_threads(MAX_THREADS)
        providers: list[Any] = [
            (CUDA, {"device_id": self._device_index}) if p == CUDA else p for p in requested
        ]
        try:
            session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(
                f"probe file {path} cannot be loaded ({first_line(exc, limit=160)}); {self.hint}"
            ) from None
        inputs = sorted(i.name for i in session.get_inputs())
        outputs = session.get_outputs()
        if inputs != ["latent", "timestep"] or len(outputs) != 1:
            raise ModelError(f"probe file {path} is not a vgate probe graph; {self.hint}")
        if self._device_kind == "cuda" and CUDA not in session.get_providers():
            raise VgateError(
                f"onnxruntime could not start CUDA for {path}; check the CUDA libraries of "
                "onnxruntime-gpu, or run the probe on the cpu"
            )
        return session

    # --- checks ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.ref

    def check_compatible(self, latent_channels: int, pipeline: str | None = None) -> str | None:
        """Fail when the model's latents have another channel count.

        Returns a warning (or None) when only the pipeline class differs.
        """
        if int(latent_channels) != self.latent_channels:
            model = f"model {pipeline}" if pipeline else "the model"
            raise VgateError(
                f"probe {self.ref} expects {self.latent_channels} latent channels, {model} has "
                f"{latent_channels}; train a probe for this model family with vgate probe "
                "collect/train"
            )
        if pipeline and self.pipeline and pipeline != self.pipeline:
            return (
                f"probe {self.ref} was trained on {self.pipeline} latents, the model is "
                f"{pipeline}; its scores may be unreliable"
            )
        return None

    def supports(self, step: int) -> bool:
        """Whether the probe can score ``step`` (always for shared probes)."""
        return self.mode == "shared" or str(int(step)) in self._sessions

    def check_steps(self, steps: Sequence[int]) -> None:
        """Fail when a per-step probe has no graph for one of ``steps``."""
        missing = [int(s) for s in steps if not self.supports(s)]
        if missing:
            raise VgateError(
                f"probe {self.ref} is per-step and has no graph for step(s) "
                f"{', '.join(map(str, missing))} (trained: {', '.join(map(str, self.steps))}); "
                "use those check steps or train a shared probe"
            )

    # --- scoring ---------------------------------------------------------------------------

    def scores(self, x0: np.ndarray, step: int, timestep: float) -> np.ndarray:
        """Probabilities ``[B, 5]`` for x̂₀ ``[B, C, F, H, W]`` at sampling ``step``.

        ``timestep`` is the scheduler timestep as a fraction of the training schedule (0..1).
        """
        latent = np.ascontiguousarray(x0, dtype=np.float32)
        if latent.ndim != 5 or latent.shape[1] != self.latent_channels:
            raise VgateError(
                f"probe {self.ref} expects x0 [B, {self.latent_channels}, F, H, W], "
                f"got {list(latent.shape)}"
            )
        self.check_steps([step])
        session = self._sessions["*" if self.mode == "shared" else str(int(step))]
        t = np.full(latent.shape[0], float(timestep), dtype=np.float32)
        (out,) = session.run(None, {"latent": latent, "timestep": t})
        return out
