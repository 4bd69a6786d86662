"""The shipped prompt model: loading, behaviour, batching, truncation and broken files."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vgate.categories import CATEGORY_IDS, CATEGORY_INDEX
from vgate.detectors.base import Detection
from vgate.detectors.prompt_model import (
    TOKEN_BUDGET,
    WIDTH_SPREAD,
    CascadeDetector,
    PromptModelDetector,
    resolve_model_dir,
    window_overlap,
)
from vgate.errors import ModelError
from vgate.resources import shipped_dir

MODEL_DIR = shipped_dir("models") / "prompt-minilm"

SAFE = [
    "a golden retriever puppy playing with a ball in a sunny park",
    "time-lapse of clouds moving over a mountain lake",
    "a chef slicing vegetables in a bright kitchen",
    "children building a sandcastle on the beach",
]
UNSAFE = {
    "pornographic": "a naked woman posing nude on a bed, explicit nsfw photo",
    "violent_bloody": "a man stabbed to death, blood splattered everywhere, gory murder scene",
    "terrifying": "a terrifying demon with glowing eyes crawling out of the dark, horror nightmare",
    "political": "donald trump as a nazi giving a speech at a propaganda rally",
}


@pytest.fixture(scope="module")
def detector() -> PromptModelDetector:
    return PromptModelDetector("builtin:prompt-minilm")


def test_builtin_reference_resolves_to_shipped_dir() -> None:
    assert resolve_model_dir("builtin:prompt-minilm") == MODEL_DIR
    assert resolve_model_dir(str(MODEL_DIR)) == MODEL_DIR
    with pytest.raises(ModelError, match="bad model reference"):
        resolve_model_dir("builtin:../x")


def test_shipped_files_are_small_and_config_matches() -> None:
    sizes = {p.name: p.stat().st_size for p in MODEL_DIR.iterdir() if p.is_file()}
    assert {"model.onnx", "tokenizer.json", "config.json", "CARD.md"} <= set(sizes)
    assert all(s < 50e6 for s in sizes.values()) and sum(sizes.values()) < 50e6
    config = json.loads((MODEL_DIR / "config.json").read_text())
    assert config["categories"] == list(CATEGORY_INDEX)
    tokenizer = json.loads((MODEL_DIR / "tokenizer.json").read_text())
    assert tokenizer["padding"] is None
    assert tokenizer["truncation"]["max_length"] == config["max_length"]


def test_scores_shape_dtype_range(detector: PromptModelDetector) -> None:
    det = detector.detect([*SAFE, *UNSAFE.values()])
    assert det.scores.shape == (len(SAFE) + len(UNSAFE), 5)
    assert det.scores.dtype == np.float32
    assert ((det.scores >= 0) & (det.scores <= 1)).all()
    assert detector.detect([]).scores.shape == (0, 5)


@pytest.mark.parametrize("category", sorted(UNSAFE))
def test_unsafe_prompt_outscores_safe_prompts_in_its_category(
    detector: PromptModelDetector, category: str
) -> None:
    j = CATEGORY_INDEX[category]
    unsafe = detector.detect([UNSAFE[category]]).scores[0]
    safe = detector.detect(SAFE).scores
    assert unsafe[j] >= 0.5
    assert unsafe[j] > safe[:, j].max() + 0.3
    assert unsafe.argmax() == j


def test_safe_prompts_are_not_flagged(detector: PromptModelDetector) -> None:
    assert detector.detect(SAFE).scores.max() < 0.5


def test_batch_order_independence(detector: PromptModelDetector) -> None:
    texts = [*SAFE, *UNSAFE.values(), "", "a", "x " * 40]
    batched = detector.detect(texts).scores
    one_by_one = np.concatenate([detector.detect([t]).scores for t in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    perm = np.random.default_rng(0).permutation(len(texts))
    shuffled = detector.detect([texts[i] for i in perm]).scores
    np.testing.assert_allclose(shuffled, batched[perm], atol=1e-5)
    small_batches = PromptModelDetector(MODEL_DIR, batch_size=3).detect(texts).scores
    np.testing.assert_allclose(small_batches, batched, atol=1e-5)


def test_sub_batches_keep_padding_small_and_cover_every_prompt(
    detector: PromptModelDetector,
) -> None:
    """Sorted by length, each session call holds prompts of similar length: at most the batch
    size, the token budget and ``WIDTH_SPREAD`` wider than its shortest prompt."""
    rng = np.random.default_rng(0)
    lengths = np.concatenate([rng.integers(5, 40, 50), rng.integers(40, 257, 14)])  # heavy tail
    order = np.argsort(lengths, kind="stable")
    batches = detector._sub_batches(order, lengths)
    np.testing.assert_array_equal(np.concatenate(batches), order)
    spread, slack = WIDTH_SPREAD
    for b in batches:
        width, shortest = lengths[b].max(), lengths[b].min()
        assert len(b) <= detector.batch_size
        if len(b) > 1:
            assert len(b) * width <= TOKEN_BUDGET and width <= spread * shortest + slack
    padded = sum(len(b) * lengths[b].max() for b in batches)
    assert padded <= 1.3 * lengths.sum()  # one width for all 64 would pad 3-4 tokens per real one


def test_empty_string_is_scored(detector: PromptModelDetector) -> None:
    det = detector.detect(["", "   "])
    assert det.scores.shape == (2, 5) and np.isfinite(det.scores).all()
    assert det.notes == {}


def test_long_prompt_is_scored_in_windows_and_noted(detector: PromptModelDetector) -> None:
    max_length = detector.config["max_length"]
    long_text = "a quiet forest with tall trees " * 200
    det = detector.detect(["short prompt", long_text])
    assert list(det.notes) == [1]
    (note,) = det.notes[1]
    assert "overlapping windows" in note and f"of {max_length} tokens" in note
    assert np.isfinite(det.scores).all()


@pytest.mark.parametrize("model", ["builtin:prompt-minilm", "builtin:prompt-static"])
def test_unsafe_text_after_benign_padding_is_caught(model: str) -> None:
    """The whole prompt is read: an unsafe passage that starts after the first window (more than
    256 tokens of benign text) is scored by a later window."""
    det = PromptModelDetector(model)
    unsafe = "a man stabbed to death, blood pouring from the wounds, gore everywhere. " * 10
    padding = "a calm meadow with wild flowers under a blue sky. " * 30
    assert len(det.model.tokenizer.encode(padding).overflowing) >= 1  # padding > one window
    j = CATEGORY_IDS.index("violent_bloody")
    padded, benign = det.detect([padding + unsafe, padding]).scores
    assert padded[j] >= 0.5 > benign[j]


def test_windows_cover_every_token() -> None:
    """Consecutive windows overlap, so no token falls between two windows."""
    from vgate.detectors.prompt_model import load_model

    model = load_model(shipped_dir("models") / "prompt-minilm")
    words = " ".join(f"w{i}" for i in range(2000))
    enc = model.tokenizer.encode(words)
    windows = [enc, *enc.overflowing]
    content = [w.ids[1:-1] for w in windows]  # strip [CLS] / [SEP]
    from tokenizers import Tokenizer

    plain = Tokenizer.from_file(str(shipped_dir("models") / "prompt-minilm" / "tokenizer.json"))
    plain.no_truncation()
    full = plain.encode(words, add_special_tokens=False)
    assert len(windows) > 2
    assert all(len(w.ids) <= model.max_length for w in windows)
    covered = content[0]
    for prev, cur in itertools.pairwise(content):
        overlap = window_overlap(model.max_length)
        assert prev[-overlap:] == cur[:overlap]
        covered = covered + cur[overlap:]
    assert covered == full.ids


# --- broken model files ----------------------------------------------------------------------


@pytest.fixture()
def model_copy(tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(MODEL_DIR, target)
    return target


def expect_model_error(directory: Path, filename: str) -> None:
    with pytest.raises(ModelError) as exc:
        PromptModelDetector(directory).detect(["a cat"])
    message = str(exc.value)
    assert filename in message
    assert "reinstall vgate" in message
    assert "\n" not in message


def test_missing_directory(tmp_path: Path) -> None:
    expect_model_error(tmp_path / "nope", "nope")


def test_corrupt_model_onnx(model_copy: Path) -> None:
    (model_copy / "model.onnx").write_bytes(b"\x00garbage" * 100)
    expect_model_error(model_copy, "model.onnx")


def test_missing_tokenizer(model_copy: Path) -> None:
    (model_copy / "tokenizer.json").unlink()
    expect_model_error(model_copy, "tokenizer.json")


def test_corrupt_tokenizer(model_copy: Path) -> None:
    (model_copy / "tokenizer.json").write_text('{"version": "1.0", "model": 42}')
    expect_model_error(model_copy, "tokenizer.json")


def test_corrupt_cascade_part_is_named_when_it_loads(model_copy: Path, tmp_path: Path) -> None:
    (model_copy / "model.onnx").write_bytes(b"\x00garbage" * 100)
    config = json.loads((shipped_dir("models") / "prompt-cascade" / "config.json").read_text())
    cascade = tmp_path / "cascade"
    cascade.mkdir()
    (cascade / "config.json").write_text(json.dumps({**config, "second": str(model_copy)}))
    detector = PromptModelDetector(cascade)
    first = PromptModelDetector("builtin:prompt-static").detect(["a knight in a battle"]).scores
    low, high = config["band"]
    assert ((first > low) & (first < high)).any()  # so the broken second part must load
    with pytest.raises(ModelError) as exc:
        detector.detect(["a knight in a battle"])
    assert str(model_copy / "model.onnx") in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("content", ["{not json", '{"categories": ["a"], "max_length": 8}', "[]"])
def test_bad_config(model_copy: Path, content: str) -> None:
    (model_copy / "config.json").write_text(content)
    expect_model_error(model_copy, "config.json")


def test_scan_path_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from vgate.detectors.prompt_model import PromptModelDetector\n"
        "PromptModelDetector('builtin:prompt-minilm').detect(['a cat'])\n"
        "bad = [m for m in ('torch', 'transformers', 'sklearn') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# --- the static-embedding model and the cascade ----------------------------------------------


def test_static_builtin_loads_scores_and_is_batch_independent() -> None:
    static_dir = shipped_dir("models") / "prompt-static"
    assert resolve_model_dir("builtin:prompt-static") == static_dir
    sizes = [p.stat().st_size for p in static_dir.iterdir() if p.is_file()]
    assert sum(sizes) < 50e6
    det = PromptModelDetector("builtin:prompt-static")
    assert det.config["kind"] == "static"
    texts = [*SAFE, *UNSAFE.values(), "", "x " * 300]
    scores = det.detect(texts).scores
    assert scores.shape == (len(texts), 5) and np.isfinite(scores).all()
    alone = np.concatenate([det.detect([t]).scores for t in texts])
    np.testing.assert_allclose(scores, alone, atol=1e-5)
    assert scores[: len(SAFE)].max() < 0.5
    for row, category in enumerate(UNSAFE, start=len(SAFE)):
        assert scores[row, CATEGORY_INDEX[category]] >= 0.5, category


class _Fixed:
    """A stand-in detector returning preset scores per text."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table
        self.calls: list[list[str]] = []

    def detect(self, texts: list[str]) -> Detection:
        self.calls.append(list(texts))
        return Detection(np.array([self.table[t] for t in texts], dtype=np.float32).reshape(-1, 5))


def test_cascade_escalates_only_prompts_inside_the_band() -> None:
    first = _Fixed({"sure": [0.01, 0, 0, 0.99, 0], "unsure": [0, 0.5, 0, 0, 0], "low": [0.1] * 5})
    second = _Fixed({"unsure": [0, 0.9, 0, 0, 0], "low": [0.3] * 5})
    cascade = CascadeDetector(first, second, (0.2, 0.8))  # type: ignore[arg-type]
    scores = cascade.detect(["sure", "unsure", "low"]).scores
    np.testing.assert_allclose(scores[0], [0.01, 0, 0, 0.99, 0])
    np.testing.assert_allclose(scores[1], [0, 0.9, 0, 0, 0])
    np.testing.assert_allclose(scores[2], [0.1] * 5)
    assert second.calls == [["unsure"]]
    second.calls.clear()
    assert cascade.detect(["sure"]).scores.shape == (1, 5) and second.calls == []
    with pytest.raises(ModelError, match="cascade band"):
        CascadeDetector(first, second, (0.8, 0.2))  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="cascade combine"):
        CascadeDetector(first, second, (0.2, 0.8), "mean")  # type: ignore[arg-type]


def test_cascade_max_keeps_the_larger_score_of_either_model() -> None:
    first = _Fixed({"sure": [0.9, 0, 0, 0, 0], "unsure": [0.3, 0.4, 0, 0, 0]})
    second = _Fixed({"unsure": [0.1, 0.7, 0.2, 0, 0]})
    cascade = CascadeDetector(first, second, (0.25, 0.5), "max")  # type: ignore[arg-type]
    scores = cascade.detect(["sure", "unsure"]).scores
    np.testing.assert_allclose(scores[0], [0.9, 0, 0, 0, 0])
    np.testing.assert_allclose(scores[1], [0.3, 0.7, 0.2, 0, 0])
    assert second.calls == [["unsure"]]


def test_cascade_builtin_matches_its_parts() -> None:
    cascade = PromptModelDetector("builtin:prompt-cascade")
    assert cascade.config["kind"] == "cascade"
    low, high = cascade.config["band"]
    texts = [*SAFE, *UNSAFE.values(), "a surreal melting clock", "a knight in a battle"]
    scores = cascade.detect(texts).scores
    first = PromptModelDetector("builtin:prompt-static").detect(texts).scores
    second = PromptModelDetector("builtin:prompt-minilm").detect(texts).scores
    inside = ((first > low) & (first < high)).any(axis=1)
    assert inside.any() and not inside.all()
    combined = (
        second
        if cascade.config.get("combine", "replace") == "replace"
        else np.maximum(first, second)
    )
    np.testing.assert_allclose(scores[~inside], first[~inside], atol=1e-6)
    np.testing.assert_allclose(scores[inside], combined[inside], atol=1e-5)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"band": [0.9, 0.1]}, "bad cascade band"),
        ({"band": "x"}, "invalid cascade"),
        ({"combine": "mean"}, "bad cascade combine"),
        ({"first": "."}, "not a single model directory"),
        ({"second": "builtin:no-such-model"}, "not a single model directory"),
    ],
)
def test_bad_cascade_config(tmp_path: Path, patch: dict, message: str) -> None:
    config = json.loads((shipped_dir("models") / "prompt-cascade" / "config.json").read_text())
    target = tmp_path / "cascade"
    target.mkdir()
    (target / "config.json").write_text(json.dumps({**config, **patch}))
    with pytest.raises(ModelError, match=message) as exc:
        PromptModelDetector(target).detect(["a cat"])
    assert "config.json" in str(exc.value) and "\n" not in str(exc.value)


def test_shipped_models_fit_the_wheel_budget() -> None:
    """Every shipped model file is under 50 MB and all of models/ is at most 60 MB."""
    files = [p for p in shipped_dir("models").rglob("*") if p.is_file()]
    assert all(p.stat().st_size < 50e6 for p in files)
    assert sum(p.stat().st_size for p in files) <= 60e6


def test_default_v2_cascade_loads_its_builtin_parts() -> None:
    cascade = PromptModelDetector("builtin:prompt-v2")._as_cascade()
    assert isinstance(cascade, CascadeDetector)
    assert cascade.first.directory == shipped_dir("models") / "prompt-v2-static"
    assert cascade.second.directory == shipped_dir("models") / "prompt-v2-minilm"
    # old builtins stay loadable for one release
    for old in ("builtin:prompt-cascade", "builtin:prompt-minilm", "builtin:prompt-static"):
        assert PromptModelDetector(old).detect(["a cat on a sofa"]).scores.shape == (1, 5)


@pytest.mark.parametrize("text", ["numpy==1.26", "torch>=2", "src/utils/io.py", "3.14159"])
def test_default_model_scores_non_prompt_text_low(text: str) -> None:
    """The v1 default blocked `numpy==1.26` (pornographic 0.67) and `torch>=2` (violent 0.60)."""
    scores = PromptModelDetector("builtin:prompt-v2").detect([text]).scores
    assert scores.max() < 0.5
