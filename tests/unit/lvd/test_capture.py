"""LatentTap on tiny random-weight diffusers pipelines: x̂₀ at the requested steps in
[B, C, F, H, W], the x̂₀ formulas against the schedulers' own, and early stopping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import (
    CogVideoXDDIMScheduler,
    CogVideoXDPMScheduler,
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    FlowMatchEulerDiscreteScheduler,
    HeunDiscreteScheduler,
    LTXPipeline,
    UniPCMultistepScheduler,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.lvdkit import TINY_CALL_KWARGS, TINY_KINDS, build_tiny_pipeline
from vgate.errors import VgateError
from vgate.lvd.capture import (
    LatentTap,
    StopSampling,
    predict_x0,
    run_pipeline,
    timestep_fraction,
)
from vgate.lvd.latents import BCFHW, BFCHW, FLAT_FRAMES, LTX_PACKED, to_bcfhw
from vgate.lvd.pipelines import SUPPORTED_PIPELINES, latent_channels, pipeline_family

# kind -> latent shape [C, F, H, W] of a TINY_CALL_KWARGS call
LATENT_SHAPES = {
    "text-to-video-sd": (4, 8, 8, 8),
    "animatediff": (4, 8, 8, 8),
    "cogvideox": (4, 3, 4, 4),
    "wan": (16, 3, 4, 4),
    "ltx": (8, 3, 8, 8),
}
DENOISER_CALLS_PER_STEP = {"wan": 2}  # Wan runs the transformer twice for CFG, the others batch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models on a shared CPU: one thread is much faster than two fighting threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Recorder:
    """An on_x0 that keeps every x̂₀ and stops at ``stop_at``."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.stop_at = stop_at
        self.steps: list[int] = []
        self.fractions: list[float] = []
        self.x0: list[torch.Tensor] = []

    def __call__(self, step: int, fraction: float, x0: torch.Tensor) -> bool:
        self.steps.append(step)
        self.fractions.append(fraction)
        self.x0.append(x0.clone())
        return step == self.stop_at


def _spy_step(pipe) -> list[dict]:
    """Record the inputs and output of every real ``scheduler.step`` call (under the tap)."""
    scheduler = pipe.scheduler
    original = scheduler.step
    calls: list[dict] = []
    signature = __import__("inspect").signature(original)

    def step(*args, **kwargs):
        out = original(*args, **kwargs)
        bound = signature.bind_partial(*args, **kwargs).arguments
        calls.append({**bound, "out": out, "index": getattr(scheduler, "step_index", None)})
        return out

    scheduler.step = step
    return calls


@pytest.mark.parametrize("kind", TINY_KINDS)
def test_x0_at_requested_steps_in_bcfhw(kind: str) -> None:
    pipe = build_tiny_pipeline(kind)
    assert pipeline_family(pipe) in SUPPORTED_PIPELINES
    rec = Recorder()
    run = run_pipeline(
        pipe, "a red car", steps={1, 3, 5}, on_x0=rec, num_inference_steps=5,
        **TINY_CALL_KWARGS[kind],
    )  # fmt: skip
    assert rec.steps == [1, 3, 5]
    assert latent_channels(pipe) == LATENT_SHAPES[kind][0]
    for x0 in rec.x0:
        assert x0.dtype == torch.float32
        assert tuple(x0.shape) == (1, *LATENT_SHAPES[kind])
        assert torch.isfinite(x0).all()
    assert all(0.0 <= f <= 1.0 for f in rec.fractions)
    assert rec.fractions == sorted(rec.fractions, reverse=True)
    assert rec.fractions[0] > rec.fractions[-1]
    assert run.stopped_at is None
    assert run.steps_run == 5
    assert run.denoiser_calls == 5 * DENOISER_CALLS_PER_STEP.get(kind, 1)
    frames = TINY_CALL_KWARGS[kind]["num_frames"]
    assert run.frames is not None and run.frames.shape == (frames, 32, 32, 3)
    assert run.frames.dtype == np.uint8
    assert "step" not in vars(pipe.scheduler)


# A scheduler whose last step lands exactly on x̂₀ (final sigma 0): the x̂₀ of the last step must
# equal the pipeline's own final latents, converted to [B, C, F, H, W] by the pipeline's code
# (output_type="latent"). This checks every layout against the pipelines themselves.
LAST_STEP_IS_X0 = {
    "text-to-video-sd": DPMSolverMultistepScheduler,
    "animatediff": DPMSolverMultistepScheduler,
    "cogvideox": DPMSolverMultistepScheduler,
    "wan": FlowMatchEulerDiscreteScheduler,
    "ltx": FlowMatchEulerDiscreteScheduler,
}


@pytest.mark.parametrize("kind", TINY_KINDS)
def test_last_x0_equals_final_latents(kind: str) -> None:
    pipe = build_tiny_pipeline(kind)
    cls = LAST_STEP_IS_X0[kind]
    if cls is not type(pipe.scheduler):
        pipe.scheduler = cls.from_config(pipe.scheduler.config)
    rec = Recorder()
    with LatentTap(pipe, steps=[4], on_x0=rec):
        out = pipe(
            prompt="a dog",
            num_inference_steps=4,
            output_type="latent",
            generator=torch.Generator().manual_seed(0),
            **TINY_CALL_KWARGS[kind],
        )
    latents = out.frames
    if kind == "cogvideox":  # its latent output stays [B, F, C, H, W]
        latents = latents.permute(0, 2, 1, 3, 4)
    if kind == "ltx":  # packed tokens: unpack them with the pipeline's own code
        latents = LTXPipeline._unpack_latents(latents, *LATENT_SHAPES[kind][1:], 1, 1)
    assert rec.steps == [4]
    assert tuple(latents.shape) == tuple(rec.x0[0].shape)
    torch.testing.assert_close(rec.x0[0], latents.float(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("scheduler_cls", "x0_method"),
    [(DPMSolverMultistepScheduler, "convert_model_output"), (UniPCMultistepScheduler, None)],
)
def test_computed_x0_matches_the_schedulers_internal_x0(scheduler_cls, x0_method) -> None:
    """DPMSolver++ / UniPC do not return x̂₀; their convert_model_output computes it inside the
    step. The tap's formula must give the same tensor at every step (flat-frames layout)."""
    pipe = build_tiny_pipeline("text-to-video-sd")
    pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config)
    scheduler = pipe.scheduler
    internal: list[torch.Tensor] = []
    convert = scheduler.convert_model_output

    def spy(*args, **kwargs):
        value = convert(*args, **kwargs)
        internal.append(value.clone())
        return value

    scheduler.convert_model_output = spy
    rec = Recorder()
    run_pipeline(
        pipe, "a dog", on_x0=rec, num_inference_steps=4, **TINY_CALL_KWARGS["text-to-video-sd"]
    )
    assert rec.steps == [1, 2, 3, 4]
    # UniPC calls convert_model_output once per step too (the corrector reuses the last one)
    assert len(internal) == 4
    for x0, flat in zip(rec.x0, internal, strict=True):
        expected = to_bcfhw(flat.float(), FLAT_FRAMES, num_frames=8)
        torch.testing.assert_close(x0, expected, rtol=1e-5, atol=1e-5)


def test_tap_passes_the_returned_pred_original_sample() -> None:
    """DDIM returns pred_original_sample: the tap hands exactly that over, and the formula that
    the tap uses for other schedulers gives the same tensor."""
    pipe = build_tiny_pipeline("animatediff")
    rec = Recorder()
    with LatentTap(pipe, steps=None, on_x0=rec):
        calls = _spy_step(pipe)
        pipe(
            prompt="a cat",
            num_inference_steps=3,
            output_type="latent",
            **TINY_CALL_KWARGS["animatediff"],
        )
    assert len(calls) == 3 and rec.steps == [1, 2, 3]
    for call, x0 in zip(calls, rec.x0, strict=True):
        returned = call["out"].pred_original_sample
        torch.testing.assert_close(x0, returned.float())
        computed = predict_x0(
            pipe.scheduler, call["model_output"], call["timestep"], call["sample"]
        )
        torch.testing.assert_close(computed, returned.float(), rtol=1e-5, atol=1e-5)
    assert "step" not in vars(pipe.scheduler)  # the spy was inside the tap: both are gone


def test_cogvideox_dpm_tuple_output_and_positional_timestep() -> None:
    """CogVideoXDPMScheduler.step(model_output, old_pred, timestep, timestep_back, sample) returns
    a tuple (prev_sample, pred_original_sample) even for return_dict=False."""
    pipe = build_tiny_pipeline("cogvideox")
    pipe.scheduler = CogVideoXDPMScheduler.from_config(pipe.scheduler.config)
    rec = Recorder()
    with LatentTap(pipe, steps=[1, 2, 4], on_x0=rec):
        calls = _spy_step(pipe)
        pipe(
            prompt="a cat",
            num_inference_steps=4,
            output_type="latent",
            **TINY_CALL_KWARGS["cogvideox"],
        )
    assert rec.steps == [1, 2, 4]
    for step, x0 in zip(rec.steps, rec.x0, strict=True):
        call = calls[step - 1]
        assert isinstance(call["out"], tuple)
        expected = call["out"][1].float().permute(0, 2, 1, 3, 4)
        torch.testing.assert_close(x0, expected)
        computed = predict_x0(
            pipe.scheduler, call["model_output"], call["timestep"], call["sample"]
        )
        torch.testing.assert_close(computed, call["out"][1].float(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
@pytest.mark.parametrize("scheduler_cls", [DDIMScheduler, CogVideoXDDIMScheduler])
def test_formula_matches_ddim_at_every_timestep(scheduler_cls, prediction_type: str) -> None:
    scheduler = scheduler_cls(prediction_type=prediction_type, clip_sample=False)
    scheduler.set_timesteps(20)
    gen = torch.Generator().manual_seed(1)
    for t in scheduler.timesteps:
        sample = torch.randn(2, 4, 3, 5, generator=gen)
        model_output = torch.randn(2, 4, 3, 5, generator=gen)
        out = scheduler.step(model_output, t, sample)
        computed = predict_x0(scheduler, model_output, t, sample)
        torch.testing.assert_close(computed, out.pred_original_sample, rtol=1e-5, atol=1e-5)
        assert timestep_fraction(scheduler, t) == pytest.approx(int(t) / 1000)


def test_flow_matching_sign_convention() -> None:
    """x_t = (1 - σ)·x₀ + σ·ε and v = ε - x₀ give back x₀ exactly (FlowMatchEuler's own v)."""
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    scheduler.set_timesteps(10)
    gen = torch.Generator().manual_seed(2)
    x0 = torch.randn(1, 16, 2, 4, 4, generator=gen)
    noise = torch.randn(1, 16, 2, 4, 4, generator=gen)
    for index, t in enumerate(scheduler.timesteps):
        sigma = float(scheduler.sigmas[index])
        x_t = scheduler.scale_noise(x0, t[None], noise)
        torch.testing.assert_close(x_t, (1 - sigma) * x0 + sigma * noise)
        got = predict_x0(scheduler, noise - x0, t, x_t, index)
        torch.testing.assert_close(got, x0, rtol=1e-4, atol=1e-4)
        assert timestep_fraction(scheduler, t, index) == pytest.approx(sigma)


def test_formula_refuses_an_unknown_noise_schedule() -> None:
    scheduler = HeunDiscreteScheduler()  # sigma-based, no alpha/sigma conversion (returns x̂₀)
    scheduler.set_timesteps(4)
    with pytest.raises(VgateError, match="cannot compute x̂₀ for the HeunDiscreteScheduler"):
        predict_x0(scheduler, torch.zeros(1), scheduler.timesteps[0], torch.zeros(1), 0)


def test_heun_counts_sampling_steps_not_step_calls() -> None:
    pipe = build_tiny_pipeline("animatediff")
    pipe.scheduler = HeunDiscreteScheduler.from_config(pipe.scheduler.config)
    rec = Recorder()
    run = run_pipeline(
        pipe, "a cat", on_x0=rec, num_inference_steps=3, **TINY_CALL_KWARGS["animatediff"]
    )
    assert rec.steps == [1, 2, 3]
    assert run.steps_run == 3
    assert run.denoiser_calls == 5  # 2 per step, the last step is first order only
    stopped = run_pipeline(
        pipe, "a cat", on_x0=Recorder(stop_at=2), num_inference_steps=3,
        **TINY_CALL_KWARGS["animatediff"],
    )  # fmt: skip
    assert (stopped.stopped_at, stopped.steps_run, stopped.denoiser_calls) == (2, 2, 4)


def test_stop_at_step_3_of_50_skips_the_rest_and_the_decode() -> None:
    pipe = build_tiny_pipeline("text-to-video-sd")
    scheduler_step = type(pipe.scheduler).step
    decodes: list[int] = []
    frees: list[int] = []
    decode = pipe.vae.decode
    pipe.vae.decode = lambda *a, **k: decodes.append(1) or decode(*a, **k)
    free = pipe.maybe_free_model_hooks
    pipe.maybe_free_model_hooks = lambda: frees.append(1) or free()

    rec = Recorder(stop_at=3)
    run = run_pipeline(
        pipe, "a cat", steps=range(1, 51), on_x0=rec, num_inference_steps=50,
        **TINY_CALL_KWARGS["text-to-video-sd"],
    )  # fmt: skip
    assert (run.stopped_at, run.steps_run, run.denoiser_calls) == (3, 3, 3)
    assert run.frames is None and run.num_inference_steps == 50
    assert rec.steps == [1, 2, 3]
    assert decodes == [] and frees == [1]
    assert "step" not in vars(pipe.scheduler)
    assert pipe.scheduler.step.__func__ is scheduler_step
    assert not pipe.unet._forward_pre_hooks

    full = run_pipeline(
        pipe, "a cat", num_inference_steps=4, **TINY_CALL_KWARGS["text-to-video-sd"]
    )
    assert (full.stopped_at, full.steps_run, full.denoiser_calls) == (None, 4, 4)
    assert decodes == [1]  # one decode of all frames
    assert full.frames is not None


def test_stop_counts_both_cfg_passes_of_wan() -> None:
    pipe = build_tiny_pipeline("wan")
    run = run_pipeline(
        pipe, "a cat", steps=[2], on_x0=lambda step, frac, x0: True, num_inference_steps=10,
        **TINY_CALL_KWARGS["wan"],
    )  # fmt: skip
    assert (run.stopped_at, run.steps_run, run.denoiser_calls) == (2, 2, 4)


def test_tap_restores_after_an_error_and_as_explicit_install() -> None:
    pipe = build_tiny_pipeline("cogvideox")

    def boom(step, frac, x0):
        raise ValueError("probe failed")

    with pytest.raises(ValueError, match="probe failed"), LatentTap(pipe, [1], boom):
        pipe(
            prompt="x", num_inference_steps=2, output_type="latent", **TINY_CALL_KWARGS["cogvideox"]
        )
    assert "step" not in vars(pipe.scheduler)
    assert not pipe.transformer._forward_pre_hooks

    tap = LatentTap(pipe, [1], lambda *a: True).install()
    try:
        with pytest.raises(StopSampling) as info:
            pipe(
                prompt="x",
                num_inference_steps=2,
                output_type="latent",
                **TINY_CALL_KWARGS["cogvideox"],
            )
        assert info.value.step == 1 and tap.stopped_at == 1
    finally:
        tap.remove()
    assert "step" not in vars(pipe.scheduler)


def test_tap_refuses_an_unsupported_pipeline() -> None:
    class StableDiffusionPipeline:
        scheduler = DDIMScheduler()

    with pytest.raises(VgateError, match="StableDiffusionPipeline is not supported; supported: "):
        LatentTap(StableDiffusionPipeline(), None, None)


# ---- layouts against the pipelines' own reshaping code --------------------------------------

dims = st.integers(min_value=1, max_value=4)


@settings(max_examples=40, deadline=None)
@given(b=dims, c=dims, f=dims, h=dims, w=dims)
def test_flat_frames_and_bfchw_round_trip(b: int, c: int, f: int, h: int, w: int) -> None:
    video = torch.randn(b, c, f, h, w)
    # TextToVideoSDPipeline folds the frames into the batch around scheduler.step like this:
    flat = video.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
    assert torch.equal(to_bcfhw(flat, FLAT_FRAMES, num_frames=f), video)
    assert torch.equal(to_bcfhw(video.permute(0, 2, 1, 3, 4), BFCHW), video)
    assert torch.equal(to_bcfhw(video, BCFHW), video)


@settings(max_examples=40, deadline=None)
@given(
    b=dims, c=dims, f=dims, h=dims, w=dims, p=st.sampled_from([1, 2]), pt=st.sampled_from([1, 2])
)
def test_ltx_unpacking_inverts_the_pipelines_packing(b, c, f, h, w, p, pt) -> None:
    video = torch.randn(b, c, f * pt, h * p, w * p)
    packed = LTXPipeline._pack_latents(video, p, pt)
    got = to_bcfhw(packed, LTX_PACKED, num_frames=f * pt, height=h * p, width=w * p,
                   patch_size=p, patch_size_t=pt)  # fmt: skip
    assert torch.equal(got, video)


def test_layout_errors_are_clear() -> None:
    with pytest.raises(VgateError, match="flat-frames needs num_frames"):
        to_bcfhw(torch.zeros(8, 4, 2, 2), FLAT_FRAMES)
    with pytest.raises(VgateError, match="do not split into videos of 3 frames"):
        to_bcfhw(torch.zeros(8, 4, 2, 2), FLAT_FRAMES, num_frames=3)
    with pytest.raises(VgateError, match="expects 5-d latents"):
        to_bcfhw(torch.zeros(8, 4, 2, 2), BCFHW)
    with pytest.raises(VgateError, match="unknown latent layout"):
        to_bcfhw(torch.zeros(1), "nchw")
