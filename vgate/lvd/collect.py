"""``vgate probe collect``: run a pipeline on labelled prompts and store x̂₀ at chosen steps.

Sampling stops right after the last collected step (the rest of the schedule and the VAE decode
are not needed), so collecting early steps is cheap. Shards are written as prompts finish; a rerun
with the same settings skips the ids already stored.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vgate.errors import VgateError
from vgate.inputs.labelled import load_labelled_csv
from vgate.lvd.shards import Manifest, ShardWriter, check_resume, stored_ids
from vgate.progress import progress_bar


def parse_steps(spec: str) -> list[int]:
    """``"1,2,3,5,10"`` or ``"1-20"`` or ``"all"`` (None is returned by the caller) -> steps."""
    steps: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        try:
            if "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
                if low > high:
                    raise ValueError
                steps.update(range(low, high + 1))
            else:
                steps.add(int(part))
        except ValueError:
            raise VgateError(
                f"--steps: cannot read {part!r}; expected step numbers like 1,2,3,5,10 or 1-20"
            ) from None
    if not steps or min(steps) < 1:
        raise VgateError("--steps: step numbers start at 1")
    return sorted(steps)


@dataclass
class CollectSummary:
    """What one collect run did."""

    out: Path
    collected: int
    skipped: int
    seconds: float
    denoiser_calls: int


def collect_latents(
    model: str,
    prompts: Path,
    steps: Sequence[int],
    out: Path,
    *,
    num_inference_steps: int = 50,
    num_frames: int = 16,
    height: int | None = None,
    width: int | None = None,
    seed: int = 0,
    device: str = "auto",
    limit: int | None = None,
    progress: bool | None = None,
) -> CollectSummary:
    """Collect x̂₀ at ``steps`` for every prompt of the labelled csv ``prompts``."""
    from vgate.lvd.capture import run_pipeline
    from vgate.lvd.pipelines import latent_channels, load_pipeline, pipeline_family

    steps = sorted(set(steps))
    if steps[-1] > num_inference_steps:
        raise VgateError(
            f"--steps: step {steps[-1]} is beyond the schedule of {num_inference_steps} steps"
        )
    data = load_labelled_csv(prompts)
    size: dict[str, Any] = {
        k: v for k, v in (("height", height), ("width", width)) if v is not None
    }
    out = Path(out)
    check_resume(
        out,
        model=model,
        steps=tuple(steps),
        num_inference_steps=num_inference_steps,
        num_frames=num_frames,
        height=size.get("height", 0),
        width=size.get("width", 0),
        seed=seed,
    )
    pipe = load_pipeline(model, device=device)
    captured: dict[int, tuple[float, np.ndarray]] = {}

    def on_x0(step: int, timestep: float, x0) -> bool:
        captured[step] = (timestep, x0[0].detach().float().cpu().numpy())
        return step >= steps[-1]

    rows = list(zip(data.ids, data.texts, data.y, strict=True))[:limit]
    done = stored_ids(out) if out.exists() else set()
    # the seed of a prompt is fixed by its row, so a resumed collection samples the same noise
    todo = [(seed + i, *row) for i, row in enumerate(rows) if row[0] not in done]
    writer: ShardWriter | None = None
    started = time.perf_counter()
    calls = 0
    with progress_bar("collecting x̂₀", len(todo), progress) as advance:
        for prompt_seed, prompt_id, text, labels in todo:
            captured.clear()
            run = run_pipeline(
                pipe,
                text,
                steps=steps,
                on_x0=on_x0,
                num_inference_steps=num_inference_steps,
                seed=prompt_seed,
                num_frames=num_frames,
                **size,
            )
            calls += run.denoiser_calls
            if writer is None:  # timesteps are known after the first run
                manifest = Manifest(
                    model=model,
                    pipeline=pipeline_family(pipe),
                    latent_channels=latent_channels(pipe),
                    steps=tuple(steps),
                    timesteps=tuple(round(captured[s][0], 6) for s in steps),
                    num_inference_steps=num_inference_steps,
                    num_frames=num_frames,
                    height=size.get("height", 0),
                    width=size.get("width", 0),
                    seed=seed,
                )
                writer = ShardWriter(out, manifest)
            x0 = np.stack([captured[s][1] for s in steps])
            writer.add(x0, labels, prompt_id)
            advance()
    if writer is not None:
        writer.flush()
    return CollectSummary(
        out=out,
        collected=len(todo),
        skipped=len(rows) - len(todo),
        seconds=time.perf_counter() - started,
        denoiser_calls=calls,
    )
