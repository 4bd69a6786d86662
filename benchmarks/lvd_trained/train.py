"""Train the small text-to-video model on the procedural clips and save it as a diffusers
``TextToVideoSDPipeline`` directory (the one vgate's ``load_pipeline`` reads).

    nice -n 5 python -m benchmarks.lvd_trained.train --out benchmarks/lvd_trained/weights

Training runs a fixed number of steps with fixed seeds, so the same command runs the same steps
on any machine, however busy (``--max-minutes`` adds an optional wall-clock cap, off by
default). Steps: render clips for the training prompts; train the tiny VAE on their frames
(reconstruction + a small KL term); encode every clip to latents and set the VAE's scaling
factor to 1/std; train the UNet3D with the DDPM objective (v-prediction by default) (10% of
conditions dropped to the empty prompt, so classifier-free guidance works) and keep an EMA of
its weights; save the pipeline with the EMA UNet, and ``training.json`` (settings, losses,
time).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.lvd_trained import data, model

WEIGHTS = Path(__file__).resolve().parent / "weights"
SAVE_MARGIN_S = 5.0  # kept from the budget for assembling and saving the pipeline


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of one training run (written to training.json)."""

    clips_per_prompt: int = 4
    vae_steps: int = 600
    vae_batch: int = 32
    unet_steps: int = 1000
    unet_batch: int = 16
    lr: float = 2e-3
    ema: float = 0.995
    uncond_prob: float = 0.1
    channels: tuple[int, int] = (16, 32)
    heads: int = 1  # attention heads of the UNet (one head learned the condition faster)
    threads: int = 2
    seed: int = 0
    max_minutes: float | None = None  # optional wall-clock cap of the whole run (None: steps
    # alone decide; the UNet phase gets what is left of a cap)
    prediction: str = "v_prediction"  # or "epsilon"
    classes: tuple[int, ...] | None = None  # train on these scene classes only (None: all);
    # seeded prompts are kept when both their scenes are among them


def _log(message: str) -> None:
    print(message, flush=True)


def train_vae(
    frames: np.ndarray, cfg: TrainConfig, log: Callable[[str], None] = _log
) -> tuple[Any, list[float]]:
    """Train the tiny AutoencoderKL on frames ``[N, H, W, 3]`` in 0..1; (vae, loss curve)."""
    import torch

    vae = model.build_vae(cfg.seed)
    x_all = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous() * 2 - 1
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    losses: list[float] = []
    vae.train()
    for step in range(cfg.vae_steps):
        idx = torch.randint(0, len(x_all), (cfg.vae_batch,), generator=gen)
        x = x_all[idx]
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample(generator=gen)).sample
        loss = torch.nn.functional.mse_loss(recon, x) + 1e-6 * posterior.kl().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if step % 100 == 0 or step == cfg.vae_steps - 1:
            log(f"vae step {step}: loss {np.mean(losses[-100:]):.4f}")
    return vae.eval(), losses


def encode_clips(vae: Any, clips: np.ndarray, seed: int) -> tuple[Any, float]:
    """Latents ``[N, C, F, h, w]`` of clips ``[N, F, H, W, 3]`` (unscaled) and 1/std."""
    import torch

    n, f = clips.shape[:2]
    x = torch.from_numpy(clips.reshape(n * f, *clips.shape[2:])).permute(0, 3, 1, 2) * 2 - 1
    gen = torch.Generator().manual_seed(seed)
    out = []
    with torch.no_grad():
        for chunk in torch.split(x, 512):
            out.append(vae.encode(chunk).latent_dist.sample(generator=gen))
    z = torch.cat(out)
    z = z.reshape(n, f, *z.shape[1:]).permute(0, 2, 1, 3, 4).contiguous()
    return z, float(1.0 / z.std())


def _lr_factor(step: int, warmup: int, progress: float) -> float:
    """Linear warm-up, then cosine decay to 10% over ``progress`` (0..1: steps or time)."""
    cosine = 0.5 * (1 + np.cos(np.pi * min(progress, 1.0)))
    return min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * cosine)


def train_denoiser(
    latents: Any,
    token_ids: Any,
    uncond_ids: Any,
    text_encoder: Any,
    cfg: TrainConfig,
    budget_s: float | None,
    log: Callable[[str], None] = _log,
) -> tuple[Any, Any, list[float], int]:
    """DDPM training of the UNet3D (and the tiny text encoder with it) on scaled latents
    ``[N, C, F, h, w]`` with prompt token ids ``[N, T]`` (``uncond_ids [T]`` for dropped
    conditions), for ``cfg.unet_steps`` (or ``budget_s`` seconds when given, if that ends first).
    Returns the EMA (unet, text encoder), the losses and the steps run."""
    import copy

    import torch
    from diffusers import DDPMScheduler

    nets = torch.nn.ModuleDict(
        {"unet": model.build_unet(cfg.seed, cfg.channels, cfg.heads), "text": text_encoder}
    )
    nets["text"].requires_grad_(True)
    ema = copy.deepcopy(nets).requires_grad_(False)
    noise_sched = DDPMScheduler.from_config(model.build_scheduler(cfg.prediction).config)
    warmup = max(1, min(200, cfg.unet_steps // 10))
    opt = torch.optim.AdamW(nets.parameters(), lr=cfg.lr / warmup, weight_decay=0.0)
    budget = None if budget_s is None else max(budget_s, 1.0)
    start = time.monotonic()
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    losses: list[float] = []
    nets.train()
    step = 0
    for step in range(cfg.unet_steps):
        idx = torch.randint(0, len(latents), (cfg.unet_batch,), generator=gen)
        z0 = latents[idx]
        ids = token_ids[idx].clone()
        drop = torch.rand(len(ids), generator=gen) < cfg.uncond_prob
        ids[drop] = uncond_ids
        noise = torch.randn(z0.shape, generator=gen)
        t = torch.randint(0, noise_sched.config.num_train_timesteps, (len(z0),), generator=gen)
        zt = noise_sched.add_noise(z0, noise, t)
        text = nets["text"](ids)[0]
        pred = nets["unet"](zt, t, encoder_hidden_states=text).sample
        target = noise if cfg.prediction == "epsilon" else noise_sched.get_velocity(z0, noise, t)
        loss = torch.nn.functional.mse_loss(pred, target)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(nets.parameters(), 1.0)
        opt.step()
        progress = step / cfg.unet_steps
        if budget is not None:
            progress = max(progress, (time.monotonic() - start) / budget)
        for group in opt.param_groups:
            group["lr"] = cfg.lr * _lr_factor(step, warmup, progress)
        with torch.no_grad():
            decay = min(cfg.ema, (1 + step) / (10 + step))
            for pe, p in zip(ema.parameters(), nets.parameters(), strict=True):
                pe.lerp_(p, 1 - decay)
        losses.append(float(loss.detach()))
        if step % 100 == 0 or step == cfg.unet_steps - 1:
            log(f"unet step {step}: loss {np.mean(losses[-100:]):.4f}")
        if progress >= 1.0:
            log(f"unet: the {cfg.max_minutes} min budget was reached at step {step}")
            break
    ema.eval()
    return ema["unet"], ema["text"], losses, step + 1


def train_model(
    out: Path,
    cfg: TrainConfig,
    prompts: Sequence[data.Prompt] | None = None,
    log: Callable[[str], None] = _log,
) -> dict[str, Any]:
    """Train every part and save the pipeline to ``out``; returns the training summary."""
    import torch

    torch.set_num_threads(cfg.threads)
    start = time.monotonic()
    if prompts is None:
        prompts = data.only_classes(data.split_prompts()[0], cfg.classes)
    prompts = list(prompts)
    clips = data.render_set(prompts, cfg.clips_per_prompt, cfg.seed)
    log(f"{len(clips)} clips for {len(prompts)} prompts ({time.monotonic() - start:.0f}s)")
    t0 = time.monotonic()
    vae, vae_losses = train_vae(clips.reshape(-1, *clips.shape[2:]), cfg, log)
    vae_s = time.monotonic() - t0
    z, scale = encode_clips(vae, clips, cfg.seed)
    vae.register_to_config(scaling_factor=scale)
    tokenizer = model.build_tokenizer()
    text_encoder = model.build_text_encoder(tokenizer, cfg.seed)
    ids = model.token_ids(tokenizer, [p.text for p in prompts])
    ids = ids.repeat_interleave(cfg.clips_per_prompt, dim=0)
    uncond = model.token_ids(tokenizer, [""])[0]
    t0 = time.monotonic()
    budget_s = None
    if cfg.max_minutes is not None:
        budget_s = cfg.max_minutes * 60 - (t0 - start) - SAVE_MARGIN_S
    unet, text_encoder, unet_losses, steps = train_denoiser(
        z * scale, ids, uncond, text_encoder, cfg, budget_s, log
    )
    unet_s = time.monotonic() - t0
    pipe = model.assemble(unet, vae, text_encoder, tokenizer, cfg.prediction)
    out = Path(out)
    pipe.save_pretrained(out)
    summary = {
        "config": asdict(cfg),
        "clips": len(clips),
        "prompts": len(prompts),
        "unet_params": sum(p.numel() for p in unet.parameters()),
        "vae_params": sum(p.numel() for p in vae.parameters()),
        "text_encoder_params": sum(p.numel() for p in text_encoder.parameters()),
        "vae_scaling_factor": scale,
        "vae_seconds": round(vae_s, 1),
        "unet_seconds": round(unet_s, 1),
        "unet_steps_run": steps,
        "total_seconds": round(time.monotonic() - start, 1),
        "vae_loss_last100": float(np.mean(vae_losses[-100:])),
        "unet_loss_first10": float(np.mean(unet_losses[:10])),
        "unet_loss_last10": float(np.mean(unet_losses[-10:])),
        "unet_loss_first100": float(np.mean(unet_losses[:100])),
        "unet_loss_last100": float(np.mean(unet_losses[-100:])),
    }
    (out / "training.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    log(json.dumps(summary, indent=2))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    defaults = TrainConfig()
    names = (
        "clips_per_prompt",
        "vae_steps",
        "vae_batch",
        "unet_steps",
        "unet_batch",
        "heads",
        "threads",
        "seed",
    )
    for name in names:
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=int, default=getattr(defaults, name))
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--ema", type=float, default=defaults.ema)
    parser.add_argument(
        "--channels", type=int, nargs=2, default=defaults.channels, help="UNet block widths"
    )
    parser.add_argument(
        "--classes", type=int, nargs="+", default=None, help="scene classes (default: all 8)"
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=defaults.max_minutes,
        help="optional wall-clock cap (default: none, the step counts decide)",
    )
    args = parser.parse_args(argv)
    cfg = TrainConfig(
        clips_per_prompt=args.clips_per_prompt,
        vae_steps=args.vae_steps,
        vae_batch=args.vae_batch,
        unet_steps=args.unet_steps,
        unet_batch=args.unet_batch,
        heads=args.heads,
        threads=args.threads,
        seed=args.seed,
        lr=args.lr,
        ema=args.ema,
        channels=tuple(args.channels),
        classes=None if args.classes is None else tuple(args.classes),
        max_minutes=args.max_minutes,
    )
    train_model(args.out, cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
