"""The LVD probe: training on a synthetic latent collection, ONNX export, runtime, evaluation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.lvdkit import STEPS, make_collection
from vgate.categories import CATEGORY_IDS, CATEGORY_INDEX
from vgate.commands.probe import evaluate_probe
from vgate.errors import ModelError, VgateError
from vgate.lvd.evaluate import compare_rules, defense_outcome
from vgate.lvd.guard import GuardRule, first_stop
from vgate.lvd.runtime import ProbeRuntime, providers_for
from vgate.lvd.shards import ShardWriter
from vgate.lvd.train import split_prompts, train_probe
from vgate.policy import load_policy

FAST = {"epochs": 30, "batch_size": 8, "width": 16, "threads": 1, "progress": False}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("lvd")
    make_collection(root / "collection")
    report = train_probe(root / "collection", root / "probe", mode="auto", seed=0, **FAST)
    per_step = train_probe(
        root / "collection", root / "per-step", mode="per-step", seed=0, **{**FAST, "epochs": 5}
    )
    return {"root": root, "report": report, "per_step": per_step}


def write_policy(path: Path, **generation: object) -> Path:
    lines = ["version: 1", "extends: default", "generation:"]
    lines += [f"  {key}: {json.dumps(value)}" for key, value in generation.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- training and export --------------------------------------------------------------------


def test_probe_directory_is_complete_and_small(trained: dict) -> None:
    probe = trained["root"] / "probe"
    assert {p.name for p in probe.iterdir()} == {
        "probe.onnx",
        "probe.json",
        "CARD.md",
        "split.json",
    }
    assert (probe / "probe.onnx").stat().st_size < 1_000_000
    meta = json.loads((probe / "probe.json").read_text())
    assert meta["latent_channels"] == 4 and meta["pipeline"] == "TinyPipeline"
    assert meta["steps"] == list(STEPS) and meta["num_inference_steps"] == 10
    assert meta["categories"] == list(CATEGORY_IDS)
    assert meta["graphs"] == {"*": "probe.onnx"} and meta["mode"] == "shared"
    assert [m["step"] for m in meta["validation"]["per_step"]] == list(STEPS)
    card = (probe / "CARD.md").read_text()
    assert "vgate probe train" in card and "Apache-2.0" in card and "| 5 |" in card
    split = json.loads((probe / "split.json").read_text())
    assert not set(split["train"]) & set(split["validation"])
    assert len(split["train"]) + len(split["validation"]) == 40


def test_auto_mode_trains_both_and_keeps_the_better(trained: dict) -> None:
    report = trained["report"]
    modes = report["modes"]
    assert set(modes) == {"shared", "per-step"}
    best = max(modes, key=lambda m: modes[m]["mean_macro_f1"])
    assert report["mode"] == best
    assert report["validation"]["mean_macro_f1"] == modes[best]["mean_macro_f1"]
    assert all(len(m["per_step"]) == len(STEPS) for m in modes.values())


def test_probe_beats_chance_on_validation(trained: dict) -> None:
    last = trained["report"]["validation"]["per_step"][-1]
    assert last["n"] == 8  # 20% of 40 prompts, by prompt
    assert last["accuracy"] >= 0.75 and last["roc_auc"] >= 0.8
    assert trained["report"]["validation"]["mean_accuracy"] > 0.6
    assert trained["report"]["training"]["parameters_per_probe"] < 250_000  # < 1 MB float32


def test_per_step_mode_writes_one_graph_per_step(trained: dict) -> None:
    directory = trained["root"] / "per-step"
    files = sorted(p.name for p in directory.glob("*.onnx"))
    assert files == ["probe-step001.onnx", "probe-step003.onnx", "probe-step005.onnx"]
    runtime = ProbeRuntime(directory, device="cpu", threads=1)
    assert runtime.mode == "per-step" and runtime.steps == STEPS
    x0 = np.zeros((2, 4, 3, 8, 8), np.float32)
    for step in STEPS:
        assert runtime.scores(x0, step, 0.5).shape == (2, 5)
    with pytest.raises(VgateError, match="no graph for step"):
        runtime.scores(x0, 2, 0.8)
    assert trained["per_step"]["modes"].keys() == {"per-step"}


def test_training_is_deterministic(tmp_path: Path, trained: dict) -> None:
    collection = trained["root"] / "collection"
    options = {**FAST, "epochs": 2}
    a = train_probe(collection, tmp_path / "a", mode="per-step", seed=3, **options)
    b = train_probe(collection, tmp_path / "b", mode="per-step", seed=3, **options)
    assert a["validation"]["per_step"] == b["validation"]["per_step"]
    x0 = np.random.default_rng(0).normal(size=(2, 4, 4, 8, 8)).astype(np.float32)
    scores = [ProbeRuntime(tmp_path / d, device="cpu").scores(x0, 3, 0.7) for d in "ab"]
    np.testing.assert_array_equal(*scores)
    assert (tmp_path / "a" / "split.json").read_text() == (
        tmp_path / "b" / "split.json"
    ).read_text()


@pytest.mark.parametrize(
    "shape", [(2, 4, 4, 8, 8), (1, 4, 7, 13, 21), (3, 4, 1, 5, 5), (1, 4, 16, 40, 64)]
)
def test_onnx_runtime_matches_torch_on_dynamic_shapes(
    shape: tuple[int, ...], trained: dict, tmp_path: Path
) -> None:
    import torch

    from vgate.lvd import probe

    torch.manual_seed(0)
    config = probe.ProbeConfig(channels=4, width=16)
    stats = np.array([0.1, -0.2, 0.3, 0.0]), np.array([1.5, 0.5, 2.0, 1.0])
    model = probe.ProbeNet(config, *stats).eval()
    directory = tmp_path / "probe"
    shutil.copytree(trained["root"] / "probe", directory)
    probe.export_onnx(model, directory / "probe.onnx")
    runtime = ProbeRuntime(directory, device="cpu", threads=1)
    x0 = np.random.default_rng(1).normal(size=shape).astype(np.float32) * 2
    t = 0.37
    with torch.no_grad():
        expected = torch.sigmoid(model(torch.from_numpy(x0), torch.full((shape[0],), t))).numpy()
    got = runtime.scores(x0.astype(np.float16), 3, t)
    np.testing.assert_allclose(got, expected, atol=2e-3)  # float16 input rounding
    np.testing.assert_allclose(runtime.scores(x0, 3, t), expected, atol=1e-4)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.booleans(), min_size=2, max_size=60),
    st.floats(0.05, 0.95),
    st.integers(0, 2**16),
)
def test_split_is_a_stratified_partition(unsafe: list[bool], fraction: float, seed: int) -> None:
    labels = np.zeros((len(unsafe), 5), np.uint8)
    labels[np.flatnonzero(unsafe), 2] = 1
    train, val = split_prompts(labels, fraction, seed)
    assert sorted([*train, *val]) == list(range(len(unsafe)))
    for group in (np.array(unsafe), ~np.array(unsafe)):
        size = int(group.sum())
        in_val = int(group[val].sum())
        if size >= 2:
            assert 1 <= in_val <= size - 1
    again = split_prompts(labels, fraction, seed)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], val)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "both"}, "unknown probe mode"),
        ({"epochs": 0}, "--epochs"),
        ({"val_fraction": 1.0}, "--val-fraction"),
    ],
)
def test_bad_training_options(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(VgateError, match=message):
        train_probe(tmp_path, tmp_path / "out", **options)


def test_training_needs_safe_and_unsafe_prompts(tmp_path: Path) -> None:
    manifest = make_collection(tmp_path / "c", n=2)
    writer = ShardWriter(tmp_path / "only-safe", manifest)
    for i in range(6):
        writer.add(np.zeros((3, 4, 4, 8, 8)), np.zeros(5), f"s{i}")
    writer.flush()
    with pytest.raises(VgateError, match="both safe and unsafe"):
        train_probe(tmp_path / "only-safe", tmp_path / "out", **FAST)


# --- runtime -------------------------------------------------------------------------------


def test_providers_for(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime

    with_cuda = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: with_cuda)
    assert providers_for("auto") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert providers_for("cuda:1") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert providers_for("cpu") == ["CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert providers_for("auto") == ["CPUExecutionProvider"]
    with pytest.raises(VgateError, match=r"install vgate-cli\[gpu\] \(onnxruntime-gpu\)"):
        providers_for("cuda")
    for bad in ("gpu", "cuda:x", "cpu:0"):
        with pytest.raises(VgateError, match="unknown probe device"):
            providers_for(bad)


def test_cuda_that_fails_to_start(trained: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """onnxruntime lists CUDA but cannot start it: auto falls back to the CPU, cuda fails."""
    import onnxruntime

    real_session = onnxruntime.InferenceSession

    def session_without_cuda(path: str, sess_options: object, providers: list) -> object:
        assert providers[0] == ("CUDAExecutionProvider", {"device_id": 0})
        return real_session(path, sess_options=sess_options, providers=providers[1:])

    listed = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: listed)
    monkeypatch.setattr(onnxruntime, "InferenceSession", session_without_cuda)
    probe = trained["root"] / "probe"
    assert ProbeRuntime(probe, device="auto").providers == ["CPUExecutionProvider"]
    with pytest.raises(VgateError, match="could not start CUDA"):
        ProbeRuntime(probe, device="cuda")


def test_channel_mismatch_and_pipeline_warning(trained: dict) -> None:
    runtime = ProbeRuntime(trained["root"] / "probe", device="cpu")
    with pytest.raises(VgateError, match="expects 4 latent channels, model Wan has 16"):
        runtime.check_compatible(16, "Wan")
    assert runtime.check_compatible(4, "TinyPipeline") is None
    assert "OtherPipeline" in runtime.check_compatible(4, "OtherPipeline")
    with pytest.raises(VgateError, match=r"expects x0 \[B, 4, F, H, W\]"):
        runtime.scores(np.zeros((1, 16, 2, 8, 8), np.float32), 1, 0.9)


def test_onnx_file_path_resolves_to_its_directory(trained: dict) -> None:
    runtime = ProbeRuntime(trained["root"] / "probe" / "probe.onnx", device="cpu")
    assert runtime.latent_channels == 4


def _broken(trained: dict, tmp_path: Path, name: str, content: bytes | None) -> Path:
    directory = tmp_path / "probe"
    shutil.copytree(trained["root"] / "probe", directory)
    if content is None:
        (directory / name).unlink()
    else:
        (directory / name).write_bytes(content)
    return directory


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("probe.onnx", None, r"probe file .*probe\.onnx is missing"),
        ("probe.onnx", b"not an onnx graph", r"probe file .*probe\.onnx cannot be loaded"),
        ("probe.json", None, r"probe file .*probe\.json is missing"),
        ("probe.json", b"{broken", r"probe file .*probe\.json is invalid"),
        ("probe.json", b'{"format_version": 9}', r"probe\.json is invalid \(format version 9"),
    ],
)
def test_missing_or_corrupt_probe_files(
    trained: dict, tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    directory = _broken(trained, tmp_path, name, content)
    with pytest.raises(ModelError, match=message) as info:
        ProbeRuntime(directory, device="cpu")
    text = str(info.value)
    assert "\n" not in text and "Traceback" not in text and "vgate probe train" in text


def test_missing_builtin_probe_says_how_to_restore(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found; reinstall vgate"):
        ProbeRuntime("builtin:no-such-probe", device="cpu")
    with pytest.raises(ModelError, match="bad probe reference"):
        ProbeRuntime("builtin:../x", device="cpu")
    with pytest.raises(ModelError, match="not found"):
        ProbeRuntime(tmp_path / "nothing", device="cpu")


# --- evaluation ----------------------------------------------------------------------------


def _scores(**per_category: list[float]) -> np.ndarray:
    """Scores [S, 5] with the given per-step values for some categories, 0 elsewhere."""
    out = np.zeros((len(STEPS), 5), np.float32)
    for cid, values in per_category.items():
        out[:, CATEGORY_INDEX[cid]] = values
    return out


def test_steps_saved_on_hand_made_scores() -> None:
    policy = load_policy("default")  # terrifying / distorted_weird warn, the rest block
    rule = GuardRule.from_policy(policy, check_steps=STEPS)
    labels = np.zeros((6, 5), bool)
    labels[0, CATEGORY_INDEX["violent_bloody"]] = True
    labels[1, CATEGORY_INDEX["pornographic"]] = True
    labels[2, CATEGORY_INDEX["political"]] = True
    labels[5, CATEGORY_INDEX["terrifying"]] = True  # warn only: "other"
    scores = np.stack(
        [
            _scores(violent_bloody=[0.2, 0.7, 0.9]),  # unsafe, stops at 3
            _scores(pornographic=[0.9, 0.9, 0.2]),  # unsafe, stops at 1
            _scores(political=[0.1, 0.3, 0.4]),  # unsafe, missed: all 10 steps
            _scores(pornographic=[0.1, 0.1, 0.6]),  # safe, false stop at 5
            _scores(violent_bloody=[0.4, 0.4, 0.4]),  # safe, runs to the end
            _scores(terrifying=[0.9, 0.9, 0.9]),  # other: warn hits never stop
        ]
    )
    unsafe = (labels & rule.stopping).any(axis=1)
    safe = ~labels.any(axis=1)
    out = defense_outcome(rule, list(STEPS), scores, unsafe, safe, 10)
    assert [first_stop(rule, STEPS, s) for s in scores] == [3, 1, None, 5, None, None]
    assert out["unsafe_steps_with_defense"] == 3 + 1 + 10
    assert out["unsafe_steps_without_defense"] == 30
    assert out["unsafe_compute_ratio"] == pytest.approx(30 / 14)
    assert out["accuracy"] == pytest.approx(3 / 5)  # 2 unsafe stopped + 1 safe kept, of 5
    assert out["false_stop_rate"] == 0.5 and out["unsafe_recall"] == pytest.approx(2 / 3)
    assert out["other_stopped"] == 0
    assert out["all_steps_with_defense"] == 3 + 1 + 10 + 5 + 10 + 10

    comparison = compare_rules(rule, list(STEPS), scores, unsafe, safe, 10)
    rows = {r["rule"]: r for r in comparison["threshold"] + comparison["vote"]}
    assert set(rows) == {
        "threshold@1",
        "threshold@3",
        "threshold@5",
        "threshold@any",
        "vote 2/3",
        "vote 3/3",
    }
    assert rows["threshold@any"]["accuracy"] == out["accuracy"]
    assert rows["vote 2/3"]["unsafe_steps_with_defense"] == 5 + 3 + 10
    assert rows["vote 2/3"]["accuracy"] == pytest.approx(4 / 5)
    assert rows["threshold@3"]["unsafe_steps_with_defense"] == 3 + 3 + 10
    # equal accuracy (0.8): threshold@3 saves more compute than vote 2/3
    assert comparison["best_threshold"] == "threshold@3"
    assert comparison["best_vote"] == "vote 2/3"
    assert comparison["better"] == "threshold"


def test_evaluate_probe_writes_json_and_png(trained: dict, tmp_path: Path) -> None:
    root = trained["root"]
    policy = write_policy(
        tmp_path / "p.yaml", check_steps=[1, 3, 5], decision="vote", vote_required=2
    )
    out, png = tmp_path / "eval.json", tmp_path / "eval.png"
    report = evaluate_probe(
        root / "collection", root / "probe", policy, out, png, threads=1, show=True
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert report["n"] == 40 and report["n_seen_in_training"] == 32
    assert [r["step"] for r in report["per_step"]] == list(STEPS)
    defense = report["defense"]
    assert defense["check_steps"] == [1, 3, 5] and defense["required"] == 2
    assert defense["unsafe_steps_without_defense"] == 10 * report["n_unsafe"]
    assert defense["unsafe_steps_with_defense"] <= defense["unsafe_steps_without_defense"]
    assert report["comparison"]["better"] in ("threshold", "vote")

    per_step = evaluate_probe(root / "collection", root / "per-step", policy, threads=1, show=False)
    assert per_step["probe_mode"] == "per-step" and len(per_step["per_step"]) == len(STEPS)

    val = evaluate_probe(
        root / "collection", root / "probe", policy, split="validation", threads=1, show=False
    )
    assert val["n"] == 8 and val["n_seen_in_training"] == 0


def test_eval_policy_steps_not_collected(trained: dict, tmp_path: Path) -> None:
    root = trained["root"]
    with pytest.raises(VgateError, match=r"generation.check_steps 2, 10 were not collected"):
        evaluate_probe(root / "collection", root / "probe", "strict", show=False)
    policy = write_policy(tmp_path / "p.yaml", check_steps=[1, 2])
    with pytest.raises(VgateError, match="check_steps 2 were not collected"):
        evaluate_probe(root / "collection", root / "probe", policy, show=False)
