"""Read the predicted clean latent x̂₀ during diffusers sampling and stop early.

:class:`LatentTap` wraps ``pipe.scheduler.step`` (``callback_on_step_end`` only sees the latents
after the step, not x̂₀) and counts the denoiser's forward calls with a pre-hook. At each chosen
1-based sampling step it hands x̂₀ as float32 ``[B, C, F, H, W]`` to ``on_x0``; when that returns
True it raises :class:`StopSampling` from inside the step, so neither the remaining steps nor the
VAE decode run.

x̂₀ is the scheduler's own ``pred_original_sample`` (DDIM, DDPM, Euler, Heun, CogVideoX DDIM /
DPM ...) or ``denoised`` (LCM) where its step returns one; otherwise it is computed from the
step's inputs (DPMSolver, UniPC, DEIS, PNDM, flow matching), see :func:`predict_x0`.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import time
import typing
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vgate.errors import VgateError
from vgate.lvd.latents import LTX_PACKED, shape_hints, to_bcfhw
from vgate.lvd.pipelines import denoisers, latent_layout, patch_sizes
from vgate.lvd.video_writer import as_uint8_frames

if TYPE_CHECKING:
    import torch

OnX0 = Callable[[int, float, "torch.Tensor"], bool]
_X0_FIELDS = ("pred_original_sample", "denoised")


class StopSampling(Exception):
    """Raised inside ``scheduler.step`` to end sampling at ``step`` (1-based)."""

    def __init__(self, step: int) -> None:
        super().__init__(f"sampling stopped at step {step}")
        self.step = step


def is_flow_matching(scheduler: Any) -> bool:
    """Rectified-flow schedulers: x_t = (1 - σ)·x₀ + σ·ε, the model predicts v = ε - x₀."""
    config = scheduler.config
    return (
        "FlowMatch" in type(scheduler).__name__
        or config.get("prediction_type") == "flow_prediction"
        or bool(config.get("use_flow_sigmas"))
    )


def _index(scheduler: Any, timestep: Any, index: int | None) -> int | None:
    if index is not None:
        return index
    if getattr(scheduler, "sigmas", None) is None or not hasattr(scheduler, "index_for_timestep"):
        return None
    return int(scheduler.index_for_timestep(timestep))


def noise_level(scheduler: Any, timestep: Any, index: int | None = None) -> tuple[float, float]:
    """(α_t, σ_t) of x_t = α_t·x₀ + σ_t·ε at this step.

    ``index`` is the step's position in ``scheduler.sigmas`` (sigma-based schedulers); without it
    the timestep is looked up. Schedulers with only ``alphas_cumprod`` use ᾱ at the timestep.
    """
    name = type(scheduler).__name__
    sigmas = getattr(scheduler, "sigmas", None)
    index = _index(scheduler, timestep, index)
    if sigmas is not None and index is not None:
        sigma = sigmas[index]
        if hasattr(scheduler, "_sigma_to_alpha_sigma_t"):  # DPMSolver, UniPC, DEIS, SA-Solver
            alpha_t, sigma_t = scheduler._sigma_to_alpha_sigma_t(sigma)
            return float(alpha_t), float(sigma_t)
        if is_flow_matching(scheduler):
            return 1.0 - float(sigma), float(sigma)
    alphas_cumprod = getattr(scheduler, "alphas_cumprod", None)
    if alphas_cumprod is not None and sigmas is None:  # DDIM, DDPM, PNDM, CogVideoX
        abar = float(alphas_cumprod[round(float(timestep))])
        return abar**0.5, (1.0 - abar) ** 0.5
    raise VgateError(f"cannot compute x̂₀ for the {name} scheduler (no known noise schedule)")


def predict_x0(
    scheduler: Any,
    model_output: torch.Tensor,
    timestep: Any,
    sample: torch.Tensor,
    index: int | None = None,
) -> torch.Tensor:
    """x̂₀ (float32) from one step's inputs, by the scheduler's prediction type.

    epsilon: (x_t - σ_t·ε) / α_t; v_prediction: α_t·x_t - σ_t·v; sample: the model output;
    flow matching: x_t - σ·v (with v = ε - x₀, the sign FlowMatchEulerDiscreteScheduler uses).
    """
    x = sample.float()
    out = model_output.float()
    alpha_t, sigma_t = noise_level(scheduler, timestep, index)
    kind = "flow" if is_flow_matching(scheduler) else scheduler.config.get("prediction_type")
    if kind in ("flow", "flow_prediction"):
        return x - sigma_t * out
    if kind in (None, "epsilon"):
        return (x - sigma_t * out) / alpha_t
    if kind == "v_prediction":
        return alpha_t * x - sigma_t * out
    if kind == "sample":
        return out
    raise VgateError(f"cannot compute x̂₀ for prediction type {kind!r}")


def timestep_fraction(scheduler: Any, timestep: Any, index: int | None = None) -> float:
    """How much noise is left, 0..1: σ for flow matching, else timestep / num_train_timesteps."""
    sigmas = getattr(scheduler, "sigmas", None)
    index = _index(scheduler, timestep, index) if sigmas is not None else None
    if is_flow_matching(scheduler) and sigmas is not None and index is not None:
        value = float(sigmas[index])
    else:
        value = float(timestep) / float(scheduler.config.get("num_train_timesteps", 1000))
    return min(max(value, 0.0), 1.0)


@functools.cache
def _tuple_x0_position(scheduler_cls: Any) -> int | None:
    """Where x̂₀ sits in the tuple ``step(..., return_dict=False)`` returns, if it does."""
    try:
        hints = typing.get_type_hints(scheduler_cls.step)
    except Exception:
        return None
    returned = hints.get("return")
    for candidate in (returned, *typing.get_args(returned)):
        if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
            names = [f.name for f in dataclasses.fields(candidate)]
            for name in _X0_FIELDS:
                if name in names:
                    return names.index(name)
    return None


def returned_x0(scheduler: Any, output: Any) -> torch.Tensor | None:
    """The x̂₀ a scheduler's step returned (output object or tuple), or None."""
    for name in _X0_FIELDS:
        value = getattr(output, name, None)
        if value is not None:
            return value
    if isinstance(output, tuple):
        position = _tuple_x0_position(scheduler.__class__)
        if position is not None and position < len(output):
            return output[position]
    return None


def _step_index(scheduler: Any) -> int | None:
    """The index of the step that just ran (sigma-based schedulers count with step_index)."""
    index = getattr(scheduler, "step_index", None)
    return None if index is None else int(index) - 1


class LatentTap:
    """Wrap ``pipe.scheduler.step`` and count the denoiser's calls for one generation.

    Use as a context manager around ``pipe(...)``; it restores the original ``step`` and removes
    the hooks on exit, and swallows its own :class:`StopSampling` (then ``stopped_at`` is set and
    ``pipe.maybe_free_model_hooks()`` has run). ``steps``: 1-based sampling steps at which
    ``on_x0(step, timestep_fraction, x0)`` is called (None: every step); x0 is float32
    ``[B, C, F, H, W]``. A sampling step is one iteration of the pipeline's loop (one
    ``step`` call), except that two-stage schedulers (Heun, KDPM2) call ``step`` twice per
    sampling step, which counts once, when its second call is done. PNDM runs warm-up
    iterations: it takes more steps than ``num_inference_steps`` (6 or 14 for 5).
    """

    def __init__(
        self,
        pipe: Any,
        steps: Collection[int] | None = None,
        on_x0: OnX0 | None = None,
    ) -> None:
        self.pipe = pipe
        self.layout = latent_layout(pipe)
        self.steps = None if steps is None else frozenset(int(s) for s in steps)
        self.on_x0 = on_x0
        self.denoiser_calls = 0
        self.steps_run = 0
        self.stopped_at: int | None = None
        self._hints: dict[str, int] = {}
        self._scheduler: Any = None
        self._own_step: Any = None
        self._handles: list[Any] = []

    # installing -----------------------------------------------------------------------------

    def install(self) -> LatentTap:
        """Patch ``scheduler.step`` and hook the denoiser(s); resets the counters."""
        if self._scheduler is not None:
            raise RuntimeError("LatentTap is already installed")
        self.denoiser_calls = self.steps_run = 0
        self.stopped_at = None
        self._hints = {}
        if self.layout == LTX_PACKED:
            spatial, temporal = patch_sizes(self.pipe)
            self._hints = {"patch_size": spatial, "patch_size_t": temporal}
        scheduler = self.pipe.scheduler
        self._scheduler = scheduler
        self._own_step = vars(scheduler).get("step")
        original = scheduler.step
        signature = inspect.signature(original)

        @functools.wraps(original)
        def step(*args: Any, **kwargs: Any) -> Any:
            output = original(*args, **kwargs)
            return self._after_step(signature, args, kwargs, output)

        scheduler.step = step
        for module in denoisers(self.pipe):
            self._handles.append(module.register_forward_pre_hook(self._count, with_kwargs=True))
        return self

    def remove(self) -> None:
        """Restore the original ``scheduler.step`` and remove the hooks (idempotent)."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            if self._own_step is None:
                vars(scheduler).pop("step", None)
            else:
                scheduler.step = self._own_step
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> LatentTap:
        return self.install()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        self.remove()
        if isinstance(exc, StopSampling) and self.stopped_at == exc.step:
            free = getattr(self.pipe, "maybe_free_model_hooks", None)
            if callable(free):
                free()
            return True
        return False

    # during sampling ------------------------------------------------------------------------

    def _count(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.denoiser_calls += 1
        self._hints.update(shape_hints(self.layout, args, kwargs))

    def _completes_step(self) -> bool:
        """False for the first half of a two-stage (Heun-style) sampling step."""
        scheduler = self._scheduler
        two_stage = isinstance(getattr(type(scheduler), "state_in_first_order", None), property)
        if two_stage and not scheduler.state_in_first_order:
            index = getattr(scheduler, "step_index", None)
            return index is not None and index >= len(scheduler.timesteps)
        return True

    def _after_step(
        self, signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any
    ) -> Any:
        if not self._completes_step():
            return out
        self.steps_run += 1
        step = self.steps_run
        if self.on_x0 is None or (self.steps is not None and step not in self.steps):
            return out
        bound = signature.bind_partial(*args, **kwargs).arguments
        scheduler = self._scheduler
        missing = [k for k in ("model_output", "timestep", "sample") if k not in bound]
        if missing:
            raise VgateError(
                f"cannot read x̂₀: {type(scheduler).__name__}.step was called without "
                f"{', '.join(missing)}"
            )
        timestep = bound["timestep"]
        index = _step_index(scheduler)
        x0 = returned_x0(scheduler, out)
        if x0 is None:
            x0 = predict_x0(scheduler, bound["model_output"], timestep, bound["sample"], index)
        x0 = to_bcfhw(x0.detach().float(), self.layout, **self._hints)
        if self.on_x0(step, timestep_fraction(scheduler, timestep, index), x0):
            self.stopped_at = step
            raise StopSampling(step)
        return out


@dataclass
class GenerationRun:
    """What one (possibly stopped) generation did."""

    frames: np.ndarray | None  # uint8 [F, H, W, 3]; None when stopped
    stopped_at: int | None
    steps_run: int
    denoiser_calls: int
    num_inference_steps: int
    seconds: float


def run_pipeline(
    pipe: Any,
    prompt: str,
    *,
    steps: Collection[int] | None = None,
    on_x0: OnX0 | None = None,
    num_inference_steps: int = 50,
    seed: int = 0,
    device: str = "cpu",
    **kwargs: Any,
) -> GenerationRun:
    """Generate one video for ``prompt``, calling ``on_x0`` at ``steps`` (see LatentTap).

    ``device`` is where the seeded ``torch.Generator`` lives (cpu: the same noise on every
    machine); ``kwargs`` go to the pipeline (num_frames, height, width, guidance_scale ...).
    """
    import torch

    generator = torch.Generator(device=device).manual_seed(seed)
    start = time.perf_counter()
    output = None
    with LatentTap(pipe, steps, on_x0) as tap:
        output = pipe(
            prompt=prompt,
            num_inference_steps=num_inference_steps,
            generator=generator,
            output_type="np",
            **kwargs,
        )
    seconds = time.perf_counter() - start
    frames = None if tap.stopped_at is not None or output is None else output.frames
    return GenerationRun(
        frames=None if frames is None else as_uint8_frames(frames),
        stopped_at=tap.stopped_at,
        steps_run=tap.steps_run,
        denoiser_calls=tap.denoiser_calls,
        num_inference_steps=num_inference_steps,
        seconds=seconds,
    )
