"""Load a diffusers text-to-video pipeline (local files only) and describe it for LVD.

Each supported pipeline class maps to the layout of the latents that its denoising loop hands to
``scheduler.step`` (verified against diffusers 0.42.1); :mod:`vgate.lvd.latents` turns each
layout into ``[B, C, F, H, W]``. torch and diffusers are imported inside the functions.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vgate.errors import MissingExtraError, VgateError, first_line
from vgate.lvd.latents import BCFHW, BFCHW, FLAT_FRAMES, LTX_PACKED

# pipeline class -> layout of the ``sample`` passed to ``scheduler.step`` in its denoising loop
SUPPORTED_PIPELINES: dict[str, str] = {
    # ModelScope / ZeroScope: latents are [B, C, F, H, W] in the pipeline, but the loop reshapes
    # them to [B*F, C, H, W] around ``scheduler.step``.
    "TextToVideoSDPipeline": FLAT_FRAMES,
    "AnimateDiffPipeline": BCFHW,
    "CogVideoXPipeline": BFCHW,
    "WanPipeline": BCFHW,
    # LTX-Video: packed tokens [B, F*H*W / patches, C * p_t * p * p]
    "LTXPipeline": LTX_PACKED,
}

DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_DEVICE = re.compile(r"^cuda:(\d+)$")


def _import_diffusers() -> tuple[Any, Any]:
    """(torch, diffusers), or MissingExtraError naming the 'generate' extra."""
    try:
        import torch
    except ImportError:
        raise MissingExtraError("torch", "generate") from None
    try:
        import diffusers
    except ImportError:
        raise MissingExtraError("diffusers", "generate") from None
    return torch, diffusers


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is there, else ``cpu``; check ``cuda`` / ``cuda:N``."""
    name = device.strip().lower()
    if name not in ("auto", "cpu", "cuda") and not _DEVICE.match(name):
        raise VgateError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    if name == "cpu":
        return "cpu"
    torch, _ = _import_diffusers()
    available = torch.cuda.is_available()
    if name == "auto":
        return "cuda" if available else "cpu"
    if not available:
        raise VgateError(
            f"--device {device} asked but no CUDA GPU is available "
            "(torch.cuda.is_available() is False); use --device cpu or auto"
        )
    match = _DEVICE.match(name)
    if match and int(match.group(1)) >= torch.cuda.device_count():
        raise VgateError(
            f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) are available"
        )
    return name


def resolve_dtype(dtype: str | None, device: str) -> Any:
    """The torch dtype: float32 on CPU, bfloat16 (else float16) on CUDA unless asked."""
    torch, _ = _import_diffusers()
    if dtype is None:
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    name = DTYPES.get(dtype.strip().lower())
    if name is None:
        raise VgateError(f"unknown dtype {dtype!r}; use float32, float16 or bfloat16")
    return getattr(torch, name)


def _supported_list() -> str:
    return ", ".join(sorted(SUPPORTED_PIPELINES))


def _pipeline_class_name(ref: str, diffusers: Any) -> str:
    """``_class_name`` of the pipeline's model_index.json (local dir or HF cache, no download)."""
    path = Path(ref).expanduser()
    if path.exists():
        if not path.is_dir():
            raise VgateError(f"{ref}: not a pipeline directory (expected a folder)")
        index = path / "model_index.json"
        if not index.is_file():
            raise VgateError(
                f"{ref}: not a diffusers pipeline directory (no model_index.json); "
                "save one with pipe.save_pretrained(path)"
            )
    elif not _HUB_ID.match(ref):
        raise VgateError(f"{ref}: no such pipeline directory")
    try:
        config = diffusers.DiffusionPipeline.load_config(str(path), local_files_only=True)
    except Exception as exc:
        if path.exists():
            problem = first_line(exc, with_type=True)
            raise VgateError(f"{ref}: unreadable model_index.json ({problem})") from None
        raise VgateError(
            f"{ref}: neither a local directory nor a model in the local Hugging Face cache; "
            "vgate does not download: the weights must be present locally (a directory saved "
            "with save_pretrained, or the HF cache, e.g. huggingface-cli download on a machine "
            "with network)"
        ) from None
    name = config.get("_class_name") if isinstance(config, dict) else None
    if not isinstance(name, str):
        raise VgateError(f"{ref}: model_index.json has no _class_name")
    return name


def _dtype_keyword() -> str:
    """``dtype`` on diffusers that deprecate ``torch_dtype`` (0.36+), else ``torch_dtype``."""
    try:
        from diffusers.utils.deprecation_utils import _TORCH_DTYPE_DEPRECATION_MESSAGE  # noqa: F401
    except ImportError:
        return "torch_dtype"
    return "dtype"


def _quiet_libraries(diffusers: Any) -> None:
    """Keep stderr for vgate's own messages: no loading bars, deprecation notes or warnings
    about truncated prompts from diffusers and transformers."""
    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    try:
        import transformers
    except ImportError:
        return
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def load_pipeline(ref: str, *, device: str = "auto", dtype: str | None = None) -> Any:
    """Load a supported text-to-video pipeline from a directory or the local HF cache.

    Never downloads (``local_files_only=True``). The pipeline is moved to the resolved device,
    put in eval mode and its progress bar is disabled.
    """
    _, diffusers = _import_diffusers()
    _quiet_libraries(diffusers)
    target = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, target)
    class_name = _pipeline_class_name(ref, diffusers)
    if class_name not in SUPPORTED_PIPELINES:
        raise VgateError(
            f"{ref}: pipeline class {class_name} is not supported; supported: {_supported_list()}"
        )
    cls = getattr(diffusers, class_name)
    local = Path(ref).expanduser()
    try:
        pipe = cls.from_pretrained(
            str(local) if local.exists() else ref,
            local_files_only=True,
            **{_dtype_keyword(): torch_dtype},
        )
    except Exception as exc:
        problem = first_line(exc, with_type=True)
        raise VgateError(f"{ref}: cannot load the pipeline ({problem})") from None
    try:
        pipe.to(target)
    except (RuntimeError, ValueError) as exc:
        raise VgateError(
            f"{ref}: cannot move the pipeline to {target} ({first_line(exc, with_type=True)})"
        ) from None
    pipe.set_progress_bar_config(disable=True)
    return pipe


def pipeline_family(pipe: Any) -> str:
    """The pipeline's class name (a key of SUPPORTED_PIPELINES when supported)."""
    return type(pipe).__name__


def latent_layout(pipe: Any) -> str:
    """The layout of the latents at ``scheduler.step`` for this pipeline, or a clear error."""
    name = pipeline_family(pipe)
    try:
        return SUPPORTED_PIPELINES[name]
    except KeyError:
        raise VgateError(
            f"pipeline class {name} is not supported; supported: {_supported_list()}"
        ) from None


def denoisers(pipe: Any) -> list[Any]:
    """Every denoising network of the pipeline (Wan 2.2 has two transformers)."""
    found = [
        module
        for attr in ("unet", "transformer", "transformer_2")
        if (module := getattr(pipe, attr, None)) is not None
    ]
    if not found:
        raise VgateError(f"{pipeline_family(pipe)}: the pipeline has no unet or transformer")
    return found


def denoiser(pipe: Any) -> Any:
    """The unet or transformer of the pipeline (the first one when there are two)."""
    return denoisers(pipe)[0]


def patch_sizes(pipe: Any) -> tuple[int, int]:
    """(spatial, temporal) patch size of packed-token pipelines (LTX); (1, 1) otherwise."""
    spatial = getattr(pipe, "transformer_spatial_patch_size", 1) or 1
    temporal = getattr(pipe, "transformer_temporal_patch_size", 1) or 1
    return int(spatial), int(temporal)


def latent_channels(pipe: Any) -> int:
    """Channels C of the ``[B, C, F, H, W]`` latents (x̂₀) of this pipeline."""
    config = denoiser(pipe).config
    channels = int(config.in_channels)
    if latent_layout(pipe) == LTX_PACKED:
        spatial, temporal = patch_sizes(pipe)
        channels //= spatial * spatial * temporal
    return channels
