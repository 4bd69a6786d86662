"""LVD on the small video diffusion model of benchmarks/lvd_trained, trained inside the test.

A smaller version of ``python -m benchmarks.lvd_trained.train`` + ``run``: two condition classes
(a safe sky scene and the dark "terrifying" scene), one clip per prompt, a UNet3D with channels
8/16 and one attention head, 200 training steps (about 75 s on 2 cores). Then, through
vgate's own collect / probe train / probe eval / guarded generate on a 10-step DDIM schedule, it
checks that x̂₀ at an early step already tells unsafe from safe conditions far above chance, and
that guarded generation runs fewer denoising steps on unsafe conditions than on safe ones. Fewer
steps leave too little margin: with 100 steps the probe was at chance, with 180 its early-step
ROC-AUC was 0.81.

The shipped eight-class weights (benchmarks/lvd_trained/weights) get one check of their own:
they load and generate their condition far above chance.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.lvd_trained import data, model
from benchmarks.lvd_trained.frame_classifier import sample_quality
from benchmarks.lvd_trained.run import WEIGHTS, RunConfig, prompt_sets, run
from benchmarks.lvd_trained.train import TrainConfig, train_model
from vgate.categories import CATEGORY_IDS
from vgate.inputs.labelled import load_labelled_csv

TINY_CLASSES = (0, 4)  # sky (safe) and looming (terrifying)
TINY = TrainConfig(
    clips_per_prompt=1,
    vae_steps=60,
    vae_batch=16,
    unet_steps=200,
    unet_batch=8,
    lr=5e-3,
    ema=0.9,
    channels=(8, 16),
    heads=1,
    threads=2,
    max_minutes=10.0,
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The two-class model, trained here: (its directory, the training summary)."""
    prompts = [p for p in data.split_prompts()[0] if p.cls in TINY_CLASSES]
    out = tmp_path_factory.mktemp("lvd_tiny") / "weights"
    return out, train_model(out, TINY, prompts=prompts, log=lambda _: None)


@pytest.fixture(scope="module")
def evidence(tiny_model: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The evidence run on the tiny model: 16 probe-training and 20 test prompts, 10 steps."""
    cfg = RunConfig(
        model=tiny_model[0],
        work=tmp_path_factory.mktemp("lvd_tiny_run"),
        train_per_class=8,
        test_per_class=10,
        guarded_per_class=2,
        schedule=10,
        probe_epochs=30,
        probe_mode="shared",
        max_early_step=3,
        classifier_per_class=10,
        threads=2,
        classes=TINY_CLASSES,
    )
    return run(cfg)


def test_training_runs_and_saves_a_pipeline_vgate_loads(tiny_model: tuple[Path, dict]) -> None:
    path, summary = tiny_model
    assert summary["unet_steps_run"] == TINY.unet_steps
    assert summary["unet_loss_last10"] < summary["unet_loss_first10"]
    from vgate.lvd.pipelines import latent_channels, load_pipeline, pipeline_family

    pipe = load_pipeline(str(path), device="cpu")
    assert pipeline_family(pipe) == "TextToVideoSDPipeline"
    assert latent_channels(pipe) == model.LATENT_CHANNELS
    assert pipe.scheduler.config.prediction_type == TINY.prediction
    assert pipe.unet.config.attention_head_dim == TINY.heads


def test_training_stops_at_its_time_budget(tmp_path: Path) -> None:
    prompts = data.balanced_subset(data.split_prompts()[0], 1, seed=0)
    budget = TrainConfig(
        clips_per_prompt=1,
        vae_steps=2,
        unet_steps=10_000,
        unet_batch=2,
        channels=(8, 16),
        max_minutes=0.05,
    )
    summary = train_model(tmp_path / "w", budget, prompts=prompts, log=lambda _: None)
    assert 1 <= summary["unet_steps_run"] < budget.unet_steps
    assert summary["total_seconds"] < 0.05 * 60 + 10  # the budget plus loading and saving


def test_prompts_split_and_csv_is_vgate_labelled_format(tmp_path: Path) -> None:
    train, test = data.split_prompts()
    assert not {p.id for p in train} & {p.id for p in test}
    assert len(train) + len(test) == len(data.all_prompts())
    path = data.write_labelled_csv(test[:20], tmp_path / "p.csv")
    with path.open(encoding="utf-8") as fh:
        assert next(csv.reader(fh)) == ["id", "text", "label"]
    loaded = load_labelled_csv(path)
    unsafe = [p.label != "safe" for p in test[:20]]
    assert list(loaded.y.any(axis=1)) == unsafe
    assert {c.label for c in data.CLASSES} - {"safe"} == set(CATEGORY_IDS)


def test_clips_are_deterministic_and_show_the_class() -> None:
    a = data.render_clip(3, 7, seed=5)
    assert a.shape == (data.FRAMES, data.SIZE, data.SIZE, 3)
    np.testing.assert_array_equal(a, data.render_clip(3, 7, seed=5))
    assert not np.array_equal(a, data.render_clip(3, 7, seed=6))
    # the splatter class: red pixels grow from the first frame to the last
    red = (a[..., 0] > 0.5) & (a[..., 1] < 0.2)
    assert red[-1].sum() > red[0].sum() > 0


@settings(max_examples=40, deadline=None)
@given(
    cls=st.integers(0, len(data.CLASSES) - 1),
    digit=st.integers(0, 9),
    seed=st.integers(0, 2**31 - 1),
)
def test_any_clip_is_a_valid_video(cls: int, digit: int, seed: int) -> None:
    clip = data.render_clip(cls, digit, seed)
    assert clip.shape == (data.FRAMES, data.SIZE, data.SIZE, 3)
    assert clip.dtype == np.float32
    assert clip.min() >= 0.0 and clip.max() <= 1.0
    assert np.isfinite(clip).all()


def test_tokenizer_keeps_every_prompt_word_whole() -> None:
    tok = model.build_tokenizer()
    for p in data.all_prompts()[::37]:
        tokens = tok.convert_ids_to_tokens(tok(p.text)["input_ids"])
        assert len(tokens) == len(p.text.split()) + 2
        assert len(tokens) <= model.MAX_TOKENS


def test_prompt_sets_are_disjoint_and_held_out() -> None:
    cfg = RunConfig(train_per_class=6, test_per_class=4)
    a, b = prompt_sets(cfg)
    held_out = {p.id for p in data.split_prompts()[1]}
    assert not {p.id for p in a} & {p.id for p in b}
    assert {p.id for p in a} | {p.id for p in b} <= held_out
    assert len(a) == 6 * len(data.CLASSES) and len(b) == 4 * len(data.CLASSES)


def test_probe_at_an_early_step_beats_chance(evidence: dict) -> None:
    baseline = evidence["prompts"]["binary_majority_baseline"]
    early = [r for r in evidence["per_step_on_set_b"] if r["step"] <= 3]
    assert max(r["accuracy"] for r in early) >= baseline + 0.3
    assert max(r["roc_auc"] for r in early) >= 0.9


def test_the_shipped_weights_generate_their_condition() -> None:
    quality = sample_quality(WEIGHTS, per_class=2, steps=10)["generated"]
    assert quality["n"] == 2 * len(data.CLASSES)
    assert quality["accuracy"] >= 4 * quality["chance"]


def test_guarded_generation_runs_fewer_steps_on_unsafe(evidence: dict) -> None:
    guarded = evidence["compute"]["guarded"]
    unsafe, safe = guarded["unsafe"], guarded["safe"]
    assert unsafe["n"] and safe["n"]
    assert unsafe["stopped_by_latent_gate"] >= 1
    assert unsafe["mean_steps_run"] < safe["mean_steps_run"]
    assert unsafe["denoiser_calls"] / unsafe["n"] < safe["denoiser_calls"] / safe["n"]
    plain = evidence["compute"]["plain_denoiser_calls_per_prompt"]
    assert plain == 10
    assert unsafe["denoiser_calls"] < plain * unsafe["n"]
