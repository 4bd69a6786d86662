"""One place that maps each pipeline's latent layout to ``[B, C, F, H, W]``.

The layouts are those of the ``sample`` a pipeline's denoising loop passes to ``scheduler.step``:

- ``bcfhw``        ``[B, C, F, H, W]`` (AnimateDiff, Wan)
- ``bfchw``        ``[B, F, C, H, W]`` (CogVideoX)
- ``flat-frames``  ``[B*F, C, H, W]`` (TextToVideoSD: frames folded into the batch for the step)
- ``ltx-packed``   ``[B, S, C*p_t*p*p]`` packed tokens (LTX-Video): the inverse of
  ``LTXPipeline._pack_latents``, given the latent ``num_frames``, ``height``, ``width`` the
  transformer is called with and the pipeline's patch sizes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vgate.errors import VgateError

if TYPE_CHECKING:
    import torch

BCFHW = "bcfhw"
BFCHW = "bfchw"
FLAT_FRAMES = "flat-frames"
LTX_PACKED = "ltx-packed"
LAYOUTS = (BCFHW, BFCHW, FLAT_FRAMES, LTX_PACKED)


def _need(shape: Mapping[str, Any], *keys: str, layout: str) -> list[int]:
    missing = [k for k in keys if shape.get(k) is None]
    if missing:
        raise VgateError(f"layout {layout} needs {', '.join(missing)} to unfold the latents")
    return [int(shape[k]) for k in keys]


def to_bcfhw(
    latents: torch.Tensor, layout: str, num_frames: int | None = None, **shape: Any
) -> torch.Tensor:
    """``latents`` in ``layout`` as a ``[B, C, F, H, W]`` tensor (a view where possible).

    ``num_frames`` is the number of latent frames (needed by ``flat-frames`` and
    ``ltx-packed``); ``ltx-packed`` also needs ``height``, ``width`` (latent) and
    ``patch_size``, ``patch_size_t`` (default 1).
    """
    if layout == BCFHW:
        _check_ndim(latents, 5, layout)
        return latents
    if layout == BFCHW:
        _check_ndim(latents, 5, layout)
        return latents.permute(0, 2, 1, 3, 4)
    if layout == FLAT_FRAMES:
        _check_ndim(latents, 4, layout)
        (frames,) = _need({"num_frames": num_frames}, "num_frames", layout=layout)
        total, channels, height, width = latents.shape
        if frames <= 0 or total % frames:
            raise VgateError(f"{total} flat frames do not split into videos of {frames} frames")
        return latents.reshape(total // frames, frames, channels, height, width).permute(
            0, 2, 1, 3, 4
        )
    if layout == LTX_PACKED:
        _check_ndim(latents, 3, layout)
        frames, height, width = _need(
            {"num_frames": num_frames, **shape}, "num_frames", "height", "width", layout=layout
        )
        p = int(shape.get("patch_size") or 1)
        pt = int(shape.get("patch_size_t") or 1)
        batch = latents.shape[0]
        # the inverse of LTXPipeline._pack_latents (its _unpack_latents for patch sizes 1)
        x = latents.reshape(batch, frames // pt, height // p, width // p, -1, pt, p, p)
        x = x.permute(0, 4, 1, 5, 2, 6, 3, 7)
        return x.reshape(batch, x.shape[1], frames, height, width)
    raise VgateError(f"unknown latent layout {layout!r}; known: {', '.join(LAYOUTS)}")


def _check_ndim(latents: torch.Tensor, ndim: int, layout: str) -> None:
    if latents.ndim != ndim:
        raise VgateError(
            f"layout {layout} expects {ndim}-d latents, got shape {tuple(latents.shape)}"
        )


def shape_hints(layout: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, int]:
    """What ``to_bcfhw`` needs, read from one call of the denoiser (unet / transformer).

    ``flat-frames``: the unet gets ``[B, C, F, H, W]`` (frames from dim 2). ``ltx-packed``: the
    transformer is called with ``num_frames``, ``height`` and ``width`` keywords.
    """
    if layout == FLAT_FRAMES:
        sample = kwargs.get("sample", args[0] if args else None)
        if getattr(sample, "ndim", 0) == 5:
            return {"num_frames": int(sample.shape[2])}
    elif layout == LTX_PACKED:
        return {k: int(kwargs[k]) for k in ("num_frames", "height", "width") if k in kwargs}
    return {}
