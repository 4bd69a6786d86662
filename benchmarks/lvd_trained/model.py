"""The parts of the small text-to-video model, as a diffusers ``TextToVideoSDPipeline``.

- tokenizer: a ``CLIPTokenizer`` whose vocabulary (every word of the data set's prompts, plus
  single characters as a fallback) is written here in code; 16 tokens per prompt.
- text encoder: a tiny ``CLIPTextModel`` (2 layers, width 32), random at first and trained
  together with the UNet (frozen random states put the class words at different positions per
  template, and the UNet learned to ignore them in a first run).
- VAE: a tiny ``AutoencoderKL`` (channels 16/32, one 2x downsampling, 4 latent channels)
  trained here for a couple of minutes on the clips' frames: 16x16 RGB frames become 8x8x4
  latents.
- denoiser: a tiny ``UNet3DConditionModel`` (channels 16/32, one layer per block) trained with
  the DDPM objective (v-prediction, as Stable Diffusion 2 uses; epsilon
  is an option) on those latents.
- scheduler: ``DDIMScheduler`` with Stable Diffusion's scaled-linear betas (1000 train steps).

torch, diffusers and transformers are imported inside the functions.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from typing import Any

from benchmarks.lvd_trained.data import SIZE, all_prompts

MAX_TOKENS = 16
TEXT_WIDTH = 32
LATENT_CHANNELS = 4
VAE_FACTOR = 2
SPECIALS = ("<|startoftext|>", "<|endoftext|>")
SUFFIX = "</w>"


def vocabulary(texts: Iterable[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A CLIP-style BPE vocabulary and merges learned on ``texts``: every word of the data set
    becomes one token; an unknown word falls back to letters.

    Plain Python with fixed tie-breaking (most frequent pair, then the alphabetically first), so
    the same texts always give the same token ids; the ``tokenizers`` trainer breaks ties in hash
    order, which made the model trained on top differ between runs.
    """
    counts: dict[tuple[str, ...], int] = {}
    for text in texts:
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            key = (*word[:-1], word[-1] + SUFFIX)
            counts[key] = counts.get(key, 0) + 1
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    tokens = [*SPECIALS, *alphabet, *(c + SUFFIX for c in alphabet)]
    merges: list[tuple[str, str]] = []
    while True:
        pairs: dict[tuple[str, str], int] = {}
        for word, n in counts.items():
            for pair in itertools.pairwise(word):
                pairs[pair] = pairs.get(pair, 0) + n
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        tokens.append(best[0] + best[1])
        counts = {_merge(word, best): n for word, n in counts.items()}
    return {t: i for i, t in enumerate(dict.fromkeys(tokens))}, merges


def _merge(word: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    """``word`` with every adjacent occurrence of ``pair`` joined into one symbol."""
    out: list[str] = []
    i = 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def build_tokenizer() -> Any:
    """The CLIPTokenizer over the data set's words."""
    from transformers import CLIPTokenizer

    vocab, merges = vocabulary(p.text for p in all_prompts())
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=MAX_TOKENS)


def build_text_encoder(tokenizer: Any, seed: int = 0) -> Any:
    """A tiny random CLIP text encoder (train.py trains it with the UNet)."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_WIDTH,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=MAX_TOKENS,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(config).eval()


def build_vae(seed: int = 0) -> Any:
    """A tiny AutoencoderKL: 16x16x3 frames <-> 8x8x4 latents."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(16, 32),
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=8,
        sample_size=SIZE,
        mid_block_add_attention=False,
    )


def build_unet(seed: int = 0, channels: tuple[int, int] = (16, 32), heads: int = 1) -> Any:
    """A tiny UNet3DConditionModel over [B, 4, F, 8, 8] latents with ``heads`` attention heads
    (diffusers' UNet3D takes the head count in ``attention_head_dim``)."""
    import torch
    from diffusers import UNet3DConditionModel

    torch.manual_seed(seed)
    return UNet3DConditionModel(
        sample_size=SIZE // VAE_FACTOR,
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        block_out_channels=channels,
        layers_per_block=1,
        cross_attention_dim=TEXT_WIDTH,
        attention_head_dim=heads,
        norm_num_groups=8,
    )


def build_scheduler(prediction_type: str = "v_prediction") -> Any:
    """DDIM with Stable Diffusion's (and ModelScope T2V's) training schedule."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type=prediction_type,
    )


def assemble(
    unet: Any, vae: Any, text_encoder: Any, tokenizer: Any, prediction_type: str = "v_prediction"
) -> Any:
    """The TextToVideoSDPipeline of the given parts (and a fresh DDIM scheduler)."""
    from diffusers import TextToVideoSDPipeline

    return TextToVideoSDPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=build_scheduler(prediction_type),
    )


def token_ids(tokenizer: Any, texts: list[str]) -> Any:
    """Token ids [N, MAX_TOKENS] padded as the pipeline pads them."""
    import torch

    ids = tokenizer(texts, padding="max_length", max_length=MAX_TOKENS, truncation=True)
    return torch.tensor(ids["input_ids"])


def encode_prompts(tokenizer: Any, text_encoder: Any, texts: list[str]) -> Any:
    """Text-encoder hidden states [N, MAX_TOKENS, TEXT_WIDTH] for ``texts`` (no grad)."""
    import torch

    with torch.no_grad():
        return text_encoder(token_ids(tokenizer, texts))[0]
