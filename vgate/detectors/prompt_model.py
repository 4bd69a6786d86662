"""The embedded prompt classifiers: one ONNX graph each (an encoder + a calibrated head), and
cascades of two of them (``"kind": "cascade"`` in config.json; the default is one).

Scan-time dependencies only: numpy, onnxruntime and tokenizers (both imported lazily).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vgate.categories import CATEGORY_IDS
from vgate.detectors.base import Detection
from vgate.errors import ModelError
from vgate.resources import DEFAULT_MODEL, builtin_models, default_threads, shipped_dir

BUILTIN_PREFIX = "builtin:"
MODEL_FILES = ("model.onnx", "tokenizer.json", "config.json")
RESTORE_HINT = (
    "reinstall vgate to restore the shipped model, or rebuild it with "
    "'vgate model train --data <prompts_train_v2.csv> --out <dir>'"
)
BATCH_SIZE = 64
TOKEN_BUDGET = 64 * 128
"""Most padded tokens per session call (64 prompts of 128 tokens)."""
WIDTH_SPREAD = (1.25, 4)
"""A session call pads its prompts to at most ``1.25 * shortest + 4`` tokens: padding costs as
much as text, and one width for a call of 64 prompts drawn from the v2 file padded 3.6 tokens for
every real one, while a call's fixed cost is about 1.5 ms (some 17 tokens of the 3-layer part)."""


def window_overlap(max_length: int) -> int:
    """Tokens shared by consecutive windows of a long prompt: a quarter of the window (so text cut
    at one window's edge is whole in the next), less than the window's content length."""
    return max(0, min(max_length // 4, max_length - 3))


_SESSIONS: dict[Path, _LoadedModel] = {}
_LOCK = threading.Lock()


def resolve_model_dir(ref: str) -> Path:
    """``builtin:<name>`` -> shipped ``models/<name>``; anything else is a directory path."""
    if ref.startswith(BUILTIN_PREFIX):
        name = ref[len(BUILTIN_PREFIX) :]
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise ModelError(f"bad model reference {ref!r}: expected builtin:<name> or a path")
        if name not in builtin_models():
            known = ", ".join(BUILTIN_PREFIX + n for n in builtin_models())
            raise ModelError(f"unknown builtin model {ref!r}; the builtin models are {known}")
        return shipped_dir("models") / name
    return Path(ref).expanduser()


MAX_THREADS = 8
"""Intra-op threads at most: more rarely helps MiniLM."""


class _LoadedModel:
    """An onnxruntime session, its tokenizer and config, loaded once per process and directory."""

    def __init__(self, directory: Path, threads: int) -> None:
        if not directory.is_dir():
            raise ModelError(f"model directory {directory} not found; {RESTORE_HINT}")
        for name in MODEL_FILES:
            if not (directory / name).is_file():
                raise ModelError(f"model file {directory / name} is missing; {RESTORE_HINT}")
        self.config = self._load_config(directory / "config.json")
        self.max_length = int(self.config["max_length"])
        self.tokenizer = self._load_tokenizer(directory / "tokenizer.json")
        self.session = self._load_session(directory / "model.onnx", threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        unknown = set(self.input_names) - {"input_ids", "attention_mask", "token_type_ids"}
        if unknown:
            raise ModelError(
                f"model file {directory / 'model.onnx'} expects unknown inputs "
                f"{sorted(unknown)}; {RESTORE_HINT}"
            )

    @staticmethod
    def _load_config(path: Path) -> dict[str, Any]:
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
            if list(config["categories"]) != list(CATEGORY_IDS):
                raise ValueError(f"categories {config['categories']} != {list(CATEGORY_IDS)}")
            if int(config["max_length"]) < 2:
                raise ValueError("max_length < 2")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelError(f"model file {path} is invalid ({msg}); {RESTORE_HINT}") from None
        return config

    def _load_tokenizer(self, path: Path) -> Any:
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            msg = str(exc).splitlines()[0][:120]
            raise ModelError(f"model file {path} is corrupt ({msg}); {RESTORE_HINT}") from None
        tokenizer.no_padding()
        tokenizer.enable_truncation(self.max_length, stride=window_overlap(self.max_length))
        return tokenizer

    @staticmethod
    def _load_session(path: Path, threads: int) -> Any:
        try:
            session = make_session(path, threads)
        except Exception as exc:  # onnxruntime raises its own exception types
            msg = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise ModelError(
                f"model file {path} cannot be loaded ({msg}); {RESTORE_HINT}"
            ) from None
        outputs = session.get_outputs()
        if len(outputs) != 1 or outputs[0].shape[-1] != len(CATEGORY_IDS):
            raise ModelError(f"model file {path} does not output scores[n, 5]; {RESTORE_HINT}")
        return session


def make_session(path: Path, threads: int) -> Any:
    """An onnxruntime CPU session with full graph optimisation.

    ``session.disable_quant_qdq`` lets constant folding dequantize the int8 weights once at load
    time, so MatMul/Attention run on prepacked fp32 weights instead of dequantizing every run.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def load_model(directory: Path, threads: int | None = None) -> _LoadedModel:
    """The loaded model for ``directory`` (cached: one session per process and directory)."""
    key = directory.resolve()
    with _LOCK:
        if key not in _SESSIONS:
            _SESSIONS[key] = _LoadedModel(key, threads or default_threads(MAX_THREADS))
        return _SESSIONS[key]


class PromptModelDetector:
    """Scores prompts with the embedded model; loads its ONNX session on first ``detect``."""

    name = "model"

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        *,
        batch_size: int = BATCH_SIZE,
        bucketing: bool = True,
        threads: int | None = None,
    ) -> None:
        self.directory = model if isinstance(model, Path) else resolve_model_dir(model)
        self.batch_size = batch_size
        self.bucketing = bucketing
        self.threads = threads
        self._model: _LoadedModel | None = None
        self._cascade: CascadeDetector | None = None
        self._cascade_config: dict[str, Any] | None = None

    def _as_cascade(self) -> CascadeDetector | None:
        """The cascade this directory describes (``"kind": "cascade"`` in config.json), or None."""
        if self._cascade is None and self._model is None:
            config_path = self.directory / "config.json"
            if config_path.is_file() and not (self.directory / "model.onnx").exists():
                config = _LoadedModel._load_config(config_path)
                if config.get("kind") == "cascade":
                    self._cascade_config = config
                    self._cascade = load_cascade(self.directory, config, self)
        return self._cascade

    @property
    def model(self) -> _LoadedModel:
        if self._model is None:
            self._model = load_model(self.directory, self.threads)
        return self._model

    @property
    def config(self) -> dict[str, Any]:
        if self._as_cascade() is not None and self._cascade_config is not None:
            return self._cascade_config
        return self.model.config

    def detect(self, texts: Sequence[str]) -> Detection:
        """Calibrated probabilities float32 ``[n, 5]``.

        A prompt longer than the model's window is scored in overlapping windows (the whole
        prompt is read) and each category keeps its largest window score; a note says so.
        """
        if (cascade := self._as_cascade()) is not None:
            return cascade.detect(texts)
        model = self.model
        scores = np.zeros((len(texts), len(CATEGORY_IDS)), dtype=np.float32)
        if not texts:
            return Detection(scores)
        windows: list[list[int]] = []
        owners: list[int] = []
        notes: dict[int, list[str]] = {}
        for i, enc in enumerate(model.tokenizer.encode_batch(list(texts))):
            for window in (enc, *enc.overflowing):
                windows.append(window.ids)
                owners.append(i)
            if enc.overflowing:
                notes[i] = [
                    f"scored in {1 + len(enc.overflowing)} overlapping windows of "
                    f"{model.max_length} tokens (highest score per category kept)"
                ]
        lengths = np.fromiter((len(w) for w in windows), dtype=np.int64, count=len(windows))
        order = np.argsort(lengths, kind="stable") if self.bucketing else np.arange(len(windows))
        window_scores = np.zeros((len(windows), len(CATEGORY_IDS)), dtype=np.float32)
        for idx in self._sub_batches(order, lengths):
            window_scores[idx] = self._run(model, [windows[i] for i in idx], lengths[idx])
        np.maximum.at(scores, np.asarray(owners), window_scores)
        return Detection(scores, notes=notes)

    def _sub_batches(self, order: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
        """Split ``order`` into runs of at most ``batch_size`` prompts and, once padded to their
        longest prompt, at most ``TOKEN_BUDGET`` tokens (long prompts go in smaller batches,
        which bounds the session's memory) and at most ``WIDTH_SPREAD`` wider than their first
        prompt (little padding once ``order`` is sorted by length)."""
        spread, slack = WIDTH_SPREAD
        batches: list[np.ndarray] = []
        current: list[int] = []
        width = first = 0
        for i in order:
            grown = max(width, int(lengths[i]))
            full = len(current) == self.batch_size or (len(current) + 1) * grown > TOKEN_BUDGET
            if current and (full or grown > spread * first + slack):
                batches.append(np.array(current))
                current, grown = [], int(lengths[i])
            if not current:
                first = grown
            current.append(int(i))
            width = grown
        if current:
            batches.append(np.array(current))
        return batches

    @staticmethod
    def _run(model: _LoadedModel, ids: list[list[int]], lengths: np.ndarray) -> np.ndarray:
        """One padded batch through the session."""
        width = int(lengths.max())
        input_ids = np.zeros((len(ids), width), dtype=np.int64)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = seq
        mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.int64)
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in model.input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        try:
            (out,) = model.session.run(None, {k: feeds[k] for k in model.input_names})
        except Exception as exc:  # onnxruntime raises its own exception types
            msg = str(exc).splitlines()[0][:160]
            raise ModelError(f"prompt model failed to run ({msg}); {RESTORE_HINT}") from None
        return np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)


CASCADE_COMBINES = ("replace", "max")


def cascade_escalates(scores: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    """Rows of ``scores [n, 5]`` with any category strictly inside ``band`` (sent on)."""
    return np.asarray(((scores > band[0]) & (scores < band[1])).any(axis=1))


def cascade_merge(first: np.ndarray, second: np.ndarray, combine: str) -> np.ndarray:
    """The cascade's scores for escalated rows: ``second``'s, or the larger per category."""
    return second if combine == "replace" else np.maximum(first, second)


class CascadeDetector:
    """Two prompt models in series: ``first`` scores every prompt; prompts with any category
    score strictly inside ``band`` are re-scored by ``second``, whose scores then replace
    ``first``'s (``combine="replace"``) or are merged with them per category by the larger
    (``combine="max"``: flagged when either model flags)."""

    name = "model"

    def __init__(
        self,
        first: PromptModelDetector,
        second: PromptModelDetector,
        band: tuple[float, float],
        combine: str = "replace",
    ) -> None:
        if not 0.0 <= band[0] <= band[1] <= 1.0:
            raise ModelError(f"bad cascade band {band}: expected 0 <= low <= high <= 1")
        if combine not in CASCADE_COMBINES:
            raise ModelError(f"bad cascade combine {combine!r}: expected one of {CASCADE_COMBINES}")
        self.first, self.second, self.band, self.combine = first, second, band, combine

    def detect(self, texts: Sequence[str]) -> Detection:
        """``first``'s scores, combined with ``second``'s for prompts inside the band."""
        det = self.first.detect(texts)
        scores = det.scores.copy()
        idx = np.flatnonzero(cascade_escalates(scores, self.band))
        if len(idx):
            second = self.second.detect([texts[int(i)] for i in idx]).scores
            scores[idx] = cascade_merge(scores[idx], second, self.combine)
        return Detection(scores, notes=det.notes)


def load_cascade(
    directory: Path, config: dict[str, Any], parent: PromptModelDetector
) -> CascadeDetector:
    """A ``CascadeDetector`` from a cascade config: ``first``/``second`` are model references
    (``builtin:<name>``, or paths relative to ``directory``), ``band`` is ``[low, high]`` and
    ``combine`` (optional, default ``replace``) is one of ``CASCADE_COMBINES``."""
    path = directory / "config.json"
    try:
        refs = [str(config["first"]), str(config["second"])]
        low, high = (float(v) for v in config["band"])
        combine = str(config.get("combine", "replace"))
    except (KeyError, TypeError, ValueError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(
            f"model file {path} is an invalid cascade ({msg}); {RESTORE_HINT}"
        ) from None
    parts = []
    for ref in refs:
        try:
            target = resolve_model_dir(ref)
        except ModelError as exc:
            raise ModelError(
                f"model file {path}: cascade part {ref!r} is not a single model directory "
                f"({exc}); {RESTORE_HINT}"
            ) from None
        if not ref.startswith(BUILTIN_PREFIX) and not target.is_absolute():
            target = directory / target
        if target.resolve() == directory.resolve() or not (target / "model.onnx").is_file():
            raise ModelError(
                f"model file {path}: cascade part {ref!r} is not a single model directory; "
                f"{RESTORE_HINT}"
            )
        parts.append(
            PromptModelDetector(
                target,
                batch_size=parent.batch_size,
                bucketing=parent.bucketing,
                threads=parent.threads,
            )
        )
    try:
        return CascadeDetector(parts[0], parts[1], (low, high), combine)
    except ModelError as exc:
        raise ModelError(f"model file {path}: {exc}; {RESTORE_HINT}") from None
