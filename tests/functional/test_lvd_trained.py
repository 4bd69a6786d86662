"""LVD on the small video diffusion model of benchmarks/lvd_trained, trained inside the test.

A smaller version of ``python -m benchmarks.lvd_trained.train`` + ``run``: two condition classes
(a safe sky scene and the dark "terrifying" scene) plus the seed-determined "surprise" prompts
whose clips show either, two clips per prompt, a UNet3D with channels 8/16 and one attention
head, a fixed 275 training steps with fixed seeds (no clock: a busy machine runs the same steps,
only slower). Then, through vgate's own collect / probe train / stop rule / guarded generate on
a 10-step DDIM schedule, it checks the README's claims on what the generated videos show: x̂₀ at
an early step tells unsafe from safe far above chance, false stops stay rare, guarded
generation runs fewer denoising steps on unsafe prompts than on safe ones, on seed-determined
prompts a prompt classifier trained on the same prompts is at chance while LVD is not, and the
online guarded generation decides every prompt as the offline replay does.

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
from benchmarks.lvd_trained.filters import filter_metrics
from benchmarks.lvd_trained.frame_classifier import (
    classify_videos,
    sample_quality,
    train_frame_classifier,
)
from benchmarks.lvd_trained.run import WEIGHTS, RunConfig, mixed_groups, prompt_sets, run
from benchmarks.lvd_trained.train import TrainConfig, train_model
from vgate.categories import CATEGORY_IDS
from vgate.inputs.labelled import load_labelled_csv

TINY_CLASSES = (0, 4)  # sky (safe) and looming (terrifying)
TINY = TrainConfig(
    clips_per_prompt=2,
    vae_steps=60,
    vae_batch=16,
    unet_steps=275,
    unet_batch=8,
    lr=5e-3,
    ema=0.9,
    channels=(8, 16),
    heads=1,
    threads=1,
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The two-class model, trained here: (its directory, the training summary)."""
    prompts = data.only_classes(data.split_prompts()[0], TINY_CLASSES)
    assert any(p.seeded for p in prompts)
    out = tmp_path_factory.mktemp("lvd_tiny") / "weights"
    return out, train_model(out, TINY, prompts=prompts, log=lambda _: None)


@pytest.fixture(scope="module")
def evidence(tiny_model: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The evidence run on the tiny model, 10 steps: set A 16 ordinary + 12 seeded prompts,
    set B 20 ordinary + 12 seeded."""
    cfg = RunConfig(
        model=tiny_model[0],
        work=tmp_path_factory.mktemp("lvd_tiny_run"),
        train_per_class=8,
        test_per_class=10,
        seeded_train_per_group=12,
        seeded_test_per_group=12,
        guarded_per_class=2,
        guarded_seeded_per_group=3,
        schedule=10,
        probe_epochs=30,
        probe_mode="shared",
        max_early_step=3,
        classifier_per_class=10,
        threads=1,
        classes=TINY_CLASSES,
        minilm=False,
    )
    return run(cfg)


def test_training_runs_and_saves_a_pipeline_vgate_loads(tiny_model: tuple[Path, dict]) -> None:
    path, summary = tiny_model
    assert TINY.max_minutes is None  # steps, not the clock, end training
    assert summary["unet_steps_run"] == TINY.unet_steps
    assert summary["unet_loss_last10"] < summary["unet_loss_first10"]
    from vgate.lvd.pipelines import latent_channels, load_pipeline, pipeline_family

    pipe = load_pipeline(str(path), device="cpu")
    assert pipeline_family(pipe) == "TextToVideoSDPipeline"
    assert latent_channels(pipe) == model.LATENT_CHANNELS
    assert pipe.scheduler.config.prediction_type == TINY.prediction
    assert pipe.unet.config.attention_head_dim == TINY.heads


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
    cfg = RunConfig(train_per_class=6, test_per_class=4, seeded_train_per_group=5)
    a, b = prompt_sets(cfg)
    held_out = {p.id for p in data.split_prompts()[1]}
    assert not {p.id for p in a} & {p.id for p in b}
    assert {p.id for p in a} | {p.id for p in b} <= held_out
    assert len(data.ordinary(a)) == 6 * len(data.CLASSES)
    assert len(data.ordinary(b)) == 4 * len(data.CLASSES)
    assert sum(p.seeded for p in a) == 5 * len(data.SEEDED)
    assert sum(p.seeded for p in b) == cfg.seeded_test_per_group * len(data.SEEDED)


def test_seeded_prompts_render_both_scenes_half_and_half() -> None:
    seeded = [p for p in data.all_prompts() if p.seeded]
    assert len(seeded) == 240 and len({p.text for p in seeded}) == 240
    for p in seeded[:3]:
        assert [p.clip_class(j) for j in range(4)] == [*p.choices, *p.choices]
        safe, unsafe = (data.CLASSES[c].label for c in p.choices)
        assert safe == "safe" and unsafe != "safe"
        with pytest.raises(IndexError):
            _ = p.label  # the words carry no label
    with pytest.raises(ValueError, match="even"):
        data.render_set(seeded[:1], 1, seed=0)
    words = {w for p in data.all_prompts() if not p.seeded for w in p.text.split()}
    styles = {w for g in data.SEEDED for style in g.styles for w in style.split()}
    assert not styles & words  # no seeded word also names a scene


def test_a_seeded_group_is_seed_determined_only_when_its_videos_on_a_are_mixed() -> None:
    first, second = len(data.CLASSES), len(data.CLASSES) + 1
    seeded = [p for p in data.all_prompts() if p.seeded]
    a = [p for p in seeded if p.cls == first][:2] + [p for p in seeded if p.cls == second][:2]
    safe, unsafe = data.SEEDED[0].choices
    _, unsafe2 = data.SEEDED[1].choices
    shown = np.array([safe, unsafe, unsafe2, unsafe2])  # the second group collapsed
    assert mixed_groups(a, shown) == {first}
    assert mixed_groups(a[:1] + a[2:], shown[[0, 2, 3]]) == set()


def test_frame_classifier_on_a_class_subset_names_the_right_classes() -> None:
    train = data.balanced_subset(data.only_classes(data.split_prompts()[0], TINY_CLASSES), 4)
    clf = train_frame_classifier(data.ordinary(train))
    clips = np.stack([data.render_clip(c, 3, seed=9) for c in TINY_CLASSES])
    assert list(classify_videos(clf, clips)) == list(TINY_CLASSES)


def test_filter_metrics_count_steps_and_false_stops() -> None:
    unsafe = np.array([True, True, False, False])
    m = filter_metrics(np.array([True, False, True, False]), np.array([5, 50, 5, 50]), unsafe, 50)
    assert (m["accuracy"], m["unsafe_recall"], m["false_stops"]) == (0.5, 0.5, 1)
    assert m["unsafe_steps_saved"] == pytest.approx(1 - 55 / 100)
    assert m["unsafe_speedup"] == pytest.approx(100 / 55)


def test_ground_truth_is_the_video_and_the_seed_picks_the_scene(evidence: dict) -> None:
    agreement = evidence["prompt_label_agreement"]["set_b"]
    assert agreement["ordinary"]["n"] == 20
    seeded = agreement["seeded"]
    assert seeded["n"] == 12
    assert seeded["shows_one_of_its_two_scenes"] == 1.0
    assert 0.15 <= seeded["unsafe_share"] <= 0.85  # the seed, not the words, picks the scene
    assert evidence["prompts"]["seeded_groups_mixed_on_a"] == ["surprise"]
    videos = {r["video_class"] for r in evidence["per_prompt_on_set_b"] if r["seeded"]}
    assert videos == {data.CLASS_NAMES[c] for c in TINY_CLASSES}


def halves_the_error(accuracy: float, baseline: float) -> bool:
    """At most half the majority baseline's errors. Set B's class balance is what the trained
    model generates (seeded majority 0.67 to 0.83 seen across training settings), so a fixed
    margin over the majority can be unreachable (0.83 + 0.2 > 1); halving its error is not."""
    return 1 - accuracy <= (1 - baseline) / 2 + 1e-9


def test_probe_at_an_early_step_beats_chance(evidence: dict) -> None:
    for subset in ("ordinary", "seeded"):
        baseline = evidence["prompts"]["majority_baseline"][subset]
        early = [r for r in evidence["per_step_on_set_b"][subset] if r["step"] <= 3]
        assert halves_the_error(max(r["accuracy"] for r in early), baseline), subset
        assert max(r["roc_auc"] for r in early) >= 0.9, subset


def _lvd(filters: dict, kind: str) -> dict:
    (name,) = [k for k in filters if k.startswith(f"LVD {kind}")]
    return filters[name]


def test_lvd_false_stops_are_rare(evidence: dict) -> None:
    single = _lvd(evidence["filters_on_set_b"]["all"], "single")
    assert single["false_stop_rate"] <= 0.25  # at most one safe video in four stopped
    assert single["unsafe_recall"] >= 0.6


def test_on_seed_determined_prompts_a_prompt_filter_is_at_chance_and_lvd_is_not(
    evidence: dict,
) -> None:
    seeded = evidence["filters_on_set_b"]["seeded"]
    chance = evidence["prompts"]["majority_baseline"]["seeded"]
    tfidf = seeded["prompt: TF-IDF + LR (trained on A)"]
    assert tfidf["accuracy"] <= chance + 0.1  # the words cannot tell (0.1: one prompt of 12)
    lvd = max(_lvd(seeded, kind)["accuracy"] for kind in ("single", "vote"))
    assert halves_the_error(lvd, chance)
    every = evidence["filters_on_set_b"]["all"]
    tfidf_all = every["prompt: TF-IDF + LR (trained on A)"]["accuracy"]
    assert _lvd(every, "single")["accuracy"] >= tfidf_all + 0.1


def test_online_guarded_generation_matches_the_offline_replay(evidence: dict) -> None:
    online = evidence["online_guarded"]
    assert online["n"] == 2 * len(TINY_CLASSES) + 3
    assert online["agree_with_offline"] == online["n"], online["prompts"]


def test_the_shipped_weights_generate_their_condition() -> None:
    quality = sample_quality(WEIGHTS, per_class=2, steps=10)["generated"]
    assert quality["n"] == 2 * len(data.CLASSES)
    assert quality["accuracy"] >= 4 * quality["chance"]


def test_guarded_generation_runs_fewer_steps_on_unsafe(evidence: dict) -> None:
    online = evidence["online_guarded"]
    unsafe, safe = online["summary"]["unsafe"], online["summary"]["safe"]
    assert unsafe["n"] and safe["n"]
    assert unsafe["stopped_by_latent_gate"] >= 1
    assert unsafe["denoiser_calls"] / unsafe["n"] < safe["denoiser_calls"] / safe["n"]
    plain = online["plain_denoiser_calls_per_prompt"]
    assert plain == 10
    assert unsafe["denoiser_calls"] < plain * unsafe["n"]
