"""The LVD probe network (torch): architecture, training loop and ONNX export.

Imported only by ``vgate probe train`` and benchmarks (it imports torch at module level); the
guarded-generation and eval paths use :mod:`vgate.lvd.runtime` (onnxruntime + numpy).

The probe maps x̂₀ ``[B, C, F, H, W]`` and the timestep fraction ``[B]`` to 5 logits (multi-label,
CATEGORY_IDS order). Frames are folded into the batch for a small 2-D conv stack (per-frame
features), pooled over H, W (any resolution) and over F by mean + max (any frame count), joined
with a timestep embedding and classified by a two-layer MLP head. Per-channel input statistics
of the training set are buffers of the model, so the exported graph takes raw latents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import nn

from vgate.categories import CATEGORY_IDS
from vgate.progress import progress_bar

INPUT_NAMES = ("latent", "timestep")
OUTPUT_NAME = "scores"
OPSET = 17
TIME_FREQS = 4
PATCH = 4
"""The stem embeds non-overlapping 4x4 latent patches: x̂₀ is smooth at the steps that matter,
and it keeps the probe at ~50 MFLOP for a 16x40x64 latent (about 1 ms on one CPU core)."""


@dataclass(frozen=True)
class ProbeConfig:
    """Architecture of a probe."""

    channels: int
    width: int = 32
    hidden: int = 64
    time_dim: int = 16
    dropout: float = 0.1


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class ProbeNet(nn.Module):
    """x̂₀ ``[B, C, F, H, W]`` + timestep fraction ``[B]`` -> logits ``[B, 5]``."""

    mean: torch.Tensor  # buffers (registered in __init__)
    std: torch.Tensor
    freqs: torch.Tensor

    def __init__(
        self,
        config: ProbeConfig,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        c, w = config.channels, config.width
        self.register_buffer("mean", torch.zeros(c) if mean is None else _buffer(mean, (c,)))
        self.register_buffer("std", torch.ones(c) if std is None else _buffer(std, (c,)))
        # non-overlapping 4x4 latent patches (32x32 pixels) of each frame
        self.stem = nn.Conv3d(c, w, (1, PATCH, PATCH), stride=(1, PATCH, PATCH))
        self.features = nn.Sequential(
            _group_norm(w),
            nn.SiLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
            _group_norm(2 * w),
            nn.SiLU(),
            nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1),
            _group_norm(2 * w),
            nn.SiLU(),
        )
        self.time = nn.Sequential(nn.Linear(2 * TIME_FREQS + 1, config.time_dim), nn.SiLU())
        self.head = nn.Sequential(
            nn.Linear(4 * w + config.time_dim, config.hidden),
            nn.SiLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, len(CATEGORY_IDS)),
        )
        self.register_buffer(
            "freqs", math.pi * 2.0 ** torch.arange(TIME_FREQS, dtype=torch.float32)
        )

    def forward(self, latent: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        b, _, f, h, w = latent.shape
        # whole patches: zero-pad the bottom/right edge (dynamic amounts survive the export)
        latent = nn.functional.pad(
            latent, (0, (PATCH - w % PATCH) % PATCH, 0, (PATCH - h % PATCH) % PATCH)
        )
        # the per-channel normalisation folded into the stem: conv((x - m) / s) is a conv of x
        # with weight / s and a shifted bias (constant-folded into one Conv in the ONNX graph)
        scale = (1.0 / self.std).reshape(1, -1, 1, 1, 1)
        weight = self.stem.weight * scale
        stem_bias = cast(torch.Tensor, self.stem.bias)
        bias = stem_bias - (weight * self.mean.reshape(1, -1, 1, 1, 1)).sum(dim=(1, 2, 3, 4))
        x = nn.functional.conv3d(latent, weight, bias, stride=self.stem.stride)
        _, width, _, ph, pw = x.shape
        frames = x.permute(0, 2, 1, 3, 4).reshape(b * f, width, ph, pw)
        feats = self.features(frames).mean(dim=(2, 3)).reshape(b, f, -1)
        pooled = torch.cat([feats.mean(dim=1), feats.amax(dim=1)], dim=1)
        angles = timestep.reshape(b, 1) * self.freqs
        t = torch.cat([timestep.reshape(b, 1), torch.sin(angles), torch.cos(angles)], dim=1)
        return self.head(torch.cat([pooled, self.time(t)], dim=1))


def _buffer(values: np.ndarray, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float32)).reshape(shape)


class ScoringNet(nn.Module):
    """The exported graph: the probe followed by a sigmoid (probabilities)."""

    def __init__(self, probe: ProbeNet) -> None:
        super().__init__()
        self.probe = probe

    def forward(self, latent: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.probe(latent, timestep))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def channel_stats(
    x0: np.ndarray, rows: np.ndarray, step_index: int | None = None, chunk: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of ``x0[rows]`` (all steps, or one), in float64 chunks."""
    channels = x0.shape[2]
    total = np.zeros(channels)
    squares = np.zeros(channels)
    count = 0
    for start in range(0, len(rows), chunk):
        part = x0[rows[start : start + chunk]]
        part = part if step_index is None else part[:, step_index : step_index + 1]
        part = part.astype(np.float64)
        axes = (0, 1, 3, 4, 5)
        total += part.sum(axis=axes)
        squares += np.square(part).sum(axis=axes)
        count += part.size // channels
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(squares / max(count, 1) - mean**2, 0.0))
    return mean.astype(np.float32), np.maximum(std, 1e-3).astype(np.float32)


@dataclass(frozen=True)
class FitSettings:
    """Optimiser settings of one training run."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-3
    flip: bool = True
    seed: int = 0


def resolve_device(device: str) -> torch.device:
    """``auto`` -> cuda when torch sees a GPU, else cpu."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def fit(
    model: ProbeNet,
    x0: np.ndarray,
    labels: np.ndarray,
    pairs: np.ndarray,
    timesteps: np.ndarray,
    settings: FitSettings,
    device: torch.device,
    *,
    label: str = "training probe",
    progress: bool | None = None,
) -> ProbeNet:
    """Train ``model`` on the (prompt row, step index) ``pairs`` of ``x0`` with BCE loss.

    ``x0`` stays float16 in memory; each batch is cast to float32 on the fly. Deterministic for
    a given seed on CPU (batch order and horizontal flips come from seeded generators).
    """
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    model.to(device).train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    batches = math.ceil(len(pairs) / settings.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings.lr, total_steps=max(1, settings.epochs * batches)
    )
    loss_fn = nn.BCEWithLogitsLoss()
    targets = torch.as_tensor(labels, dtype=torch.float32)
    with progress_bar(label, settings.epochs, progress) as advance:
        for _ in range(settings.epochs):
            order = rng.permutation(len(pairs))
            for start in range(0, len(order), settings.batch_size):
                batch = pairs[order[start : start + settings.batch_size]]
                latent = torch.from_numpy(x0[batch[:, 0], batch[:, 1]].astype(np.float32))
                if settings.flip:
                    flip = torch.from_numpy(rng.random(len(batch)) < 0.5)
                    latent[flip] = latent[flip].flip(-1)
                t = torch.from_numpy(timesteps[batch[:, 1]].astype(np.float32))
                logits = model(latent.to(device), t.to(device))
                loss = loss_fn(logits, targets[batch[:, 0]].to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
            advance()
    return model.eval()


@torch.no_grad()
def predict(
    model: ProbeNet,
    x0: np.ndarray,
    rows: np.ndarray,
    step_index: int,
    timestep: float,
    device: torch.device,
    batch_size: int = 64,
) -> np.ndarray:
    """Probabilities ``[len(rows), 5]`` at one collected step."""
    model.to(device).eval()
    out = []
    for start in range(0, len(rows), batch_size):
        part = rows[start : start + batch_size]
        latent = torch.from_numpy(x0[part, step_index].astype(np.float32)).to(device)
        t = torch.full((len(part),), float(timestep), dtype=torch.float32, device=device)
        out.append(torch.sigmoid(model(latent, t)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(CATEGORY_IDS)), np.float32)


def export_onnx(model: ProbeNet, path: Path) -> None:
    """Write ``model`` (with the sigmoid) as ONNX; batch, frames, height, width are dynamic."""
    import warnings

    scoring = ScoringNet(model.cpu().eval()).eval()
    latent = torch.randn(2, model.config.channels, 3, 12, 20)
    timestep = torch.tensor([0.9, 0.5])
    axes = {0: "batch", 2: "frames", 3: "height", 4: "width"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            scoring,
            (latent, timestep),
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_axes={"latent": axes, "timestep": {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
