"""Tiny random-weight text-to-video pipelines built in code (tests, benchmarks, CLI demos), and
synthetic latent collections for the probe tests.

No downloads: tokenizers get a small vocabulary written here, every model a few thousand
parameters. The outputs are noise; the point is the real diffusers sampling loop, schedulers and
latent layouts at a cost of milliseconds per step on a CPU.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import numpy as np

from vgate.categories import CATEGORY_IDS
from vgate.errors import VgateError
from vgate.lvd.pipelines import _import_diffusers
from vgate.lvd.shards import Manifest, ShardWriter

# kind -> keyword arguments of a pipeline call that fit the tiny models (32x32 px)
TINY_CALL_KWARGS: dict[str, dict[str, Any]] = {
    "text-to-video-sd": {"num_frames": 8, "height": 32, "width": 32},
    "animatediff": {"num_frames": 8, "height": 32, "width": 32},
    "cogvideox": {"num_frames": 9, "height": 32, "width": 32},
    "wan": {"num_frames": 9, "height": 32, "width": 32},
    "ltx": {"num_frames": 9, "height": 32, "width": 32},
}
TINY_KINDS = tuple(TINY_CALL_KWARGS)
_TEXT_DIM = 16


def _clip_parts() -> tuple[Any, Any]:
    """A byte-level CLIP tokenizer over single characters and a 1-layer CLIPTextModel."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for char in chars:
            vocab[char + suffix] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=16)
    config = CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=_TEXT_DIM,
        intermediate_size=32,
        num_attention_heads=2,
        num_hidden_layers=1,
        max_position_embeddings=16,
        projection_dim=_TEXT_DIM,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    return tokenizer, CLIPTextModel(config)


def _t5_parts(umt5: bool = False) -> tuple[Any, Any]:
    """A unigram T5 tokenizer over characters and a 1-layer (U)T5 encoder."""
    from transformers import T5Config, T5EncoderModel, T5Tokenizer, UMT5Config, UMT5EncoderModel

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    for char in string.ascii_lowercase + string.digits + string.punctuation:
        pieces += [("▁" + char, -3.0), (char, -4.0)]
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0)
    config_cls, model_cls = (UMT5Config, UMT5EncoderModel) if umt5 else (T5Config, T5EncoderModel)
    config = config_cls(
        vocab_size=len(pieces),
        d_model=_TEXT_DIM,
        d_kv=8,
        d_ff=32,
        num_layers=1,
        num_heads=2,
        relative_attention_num_buckets=8,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    return tokenizer, model_cls(config)


def _ddim() -> Any:
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


def _sd_vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(8, 8, 8),  # 4x spatial: 32 px -> 8 latent
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        sample_size=32,
    )


def _text_to_video_sd() -> Any:
    from diffusers import TextToVideoSDPipeline, UNet3DConditionModel

    tokenizer, text_encoder = _clip_parts()
    unet = UNet3DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock3D",),  # the mid block keeps the cross-attention
        up_block_types=("UpBlock3D",),
        block_out_channels=(16,),
        layers_per_block=1,
        norm_num_groups=4,
        cross_attention_dim=_TEXT_DIM,
        attention_head_dim=8,
    )
    return TextToVideoSDPipeline(
        vae=_sd_vae(), text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=_ddim()
    )


def _animatediff() -> Any:
    from diffusers import AnimateDiffPipeline, MotionAdapter, UNet2DConditionModel

    tokenizer, text_encoder = _clip_parts()
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D",),  # the mid block keeps the cross-attention
        up_block_types=("UpBlock2D",),
        block_out_channels=(8,),
        layers_per_block=1,
        norm_num_groups=2,
        cross_attention_dim=_TEXT_DIM,
        attention_head_dim=4,
    )
    adapter = MotionAdapter(
        block_out_channels=(8,),
        motion_layers_per_block=1,
        motion_norm_num_groups=2,
        motion_num_attention_heads=2,
        motion_max_seq_length=32,
    )
    return AnimateDiffPipeline(
        vae=_sd_vae(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        motion_adapter=adapter,
        scheduler=_ddim(),
    )


def _cogvideox() -> Any:
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
    )

    tokenizer, text_encoder = _t5_parts()
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=4,
        out_channels=4,
        time_embed_dim=8,
        text_embed_dim=_TEXT_DIM,
        num_layers=1,
        sample_width=4,
        sample_height=4,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=226,
    )
    vae = AutoencoderKLCogVideoX(
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),  # 8x spatial, 4x temporal: 9x32x32 -> 3x4x4
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    scheduler = CogVideoXDDIMScheduler(
        beta_schedule="scaled_linear",
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        timestep_spacing="trailing",
        clip_sample=False,
        set_alpha_to_one=True,
        snr_shift_scale=3.0,
    )
    return CogVideoXPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=scheduler,
    )


def _wan() -> Any:
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )

    tokenizer, text_encoder = _t5_parts(umt5=True)
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],  # 8x spatial, 4x temporal
    )
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=16,
        out_channels=16,
        text_dim=_TEXT_DIM,
        freq_dim=16,
        ffn_dim=16,
        num_layers=1,
        rope_max_seq_len=32,
    )
    return WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        transformer=transformer,
    )


def _ltx() -> Any:
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )

    tokenizer, text_encoder = _t5_parts()
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        num_layers=1,
        caption_channels=_TEXT_DIM,
    )
    vae = AutoencoderKLLTXVideo(
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),  # 4x spatial, 4x temporal
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4,
        upsample_factor=(1,) * 4,
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    return LTXPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )


_BUILDERS = {
    "text-to-video-sd": _text_to_video_sd,
    "animatediff": _animatediff,
    "cogvideox": _cogvideox,
    "wan": _wan,
    "ltx": _ltx,
}


def build_tiny_pipeline(kind: str = "text-to-video-sd", seed: int = 0) -> Any:
    """A random-weight tiny pipeline of ``kind`` (see TINY_KINDS), in eval mode, on the CPU.

    Call it with ``TINY_CALL_KWARGS[kind]`` (32x32 px, 8 or 9 frames). The global torch RNG is
    left as it was.
    """
    torch, _ = _import_diffusers()
    try:
        builder = _BUILDERS[kind]
    except KeyError:
        raise VgateError(
            f"unknown tiny pipeline kind {kind!r}; known: {', '.join(TINY_KINDS)}"
        ) from None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        pipe = builder()
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_tiny_pipeline(kind: str, path: str | Path, seed: int = 0) -> Path:
    """Build a tiny pipeline and ``save_pretrained`` it to ``path`` (for load_pipeline)."""
    out = Path(path)
    build_tiny_pipeline(kind, seed).save_pretrained(str(out))
    return out


# --- synthetic latent collections -----------------------------------------------------------

STEPS = (1, 3, 5)
AMPLITUDES = (0.4, 0.9, 1.6)  # the unsafe signal grows with the step


def make_collection(path: Path, n: int = 40, seed: int = 0, channels: int = 4) -> Manifest:
    """Odd prompts are unsafe (one category each, in turn); their latents get an offset on one
    channel over the top half of every frame, ``AMPLITUDES[s]`` at collected step ``s``."""
    rng = np.random.default_rng(seed)
    manifest = Manifest(
        model="tiny/model",
        pipeline="TinyPipeline",
        latent_channels=channels,
        steps=STEPS,
        timesteps=tuple(1 - s / 10 for s in STEPS),
        num_inference_steps=10,
        num_frames=4,
        height=64,
        width=64,
        seed=seed,
    )
    writer = ShardWriter(path, manifest, shard_size=16)
    for i in range(n):
        labels = np.zeros(len(CATEGORY_IDS), np.uint8)
        x0 = rng.normal(size=(len(STEPS), channels, 4, 8, 8)).astype(np.float32)
        if i % 2:
            k = (i // 2) % len(CATEGORY_IDS)
            labels[k] = 1
            channel, sign = (k, 1.0) if k < 4 else (1, -1.0)
            for s, amplitude in enumerate(AMPLITUDES):
                x0[s, channel, :, :4] += sign * amplitude
        writer.add(x0, labels, f"p{i:03d}")
    writer.flush()
    return manifest
