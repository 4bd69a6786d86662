"""LVD probe speed: ONNX probe latency vs one denoising step.

    python benchmarks/probe_speed.py [--repeat 30]

For x̂₀ latents ``[1, C, 16, 40, 64]`` (320x512 video) and ``[1, C, 16, 60, 90]`` (480x720),
C = 4 and 16, measures the exported probe (default width, random weights: speed only) under
onnxruntime on CPU (and CUDA when onnxruntime has it), through ``ProbeRuntime.scores``. Side by
side:

- one forward (CFG batch 2) of the UNet3D of vgate's tiny test pipeline, measured;
- the real ModelScope text-to-video-ms-1.7b UNet3D, *estimated*: its FLOPs are counted with
  ``torch.utils.flop_counter`` on a meta-device instance of diffusers' ``UNet3DConditionModel``
  with its default configuration (the ModelScope architecture: block_out_channels 320/640/1280/
  1280, cross_attention_dim 1024, head dim 64; the script checks its 1.41 B parameters), at
  batch 2 (classifier-free guidance) and 77 text tokens; a step time follows from an *assumed*
  sustained throughput (40 % of the fp16 dense peak of an A100 / H100).

Prints a table and writes benchmarks/results/probe_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.lvdkit
SHAPES = ((1, 4, 16, 40, 64), (1, 4, 16, 60, 90), (1, 16, 16, 40, 64), (1, 16, 16, 60, 90))
GPU_ASSUMPTIONS = {  # fp16 dense tensor-core peak (TFLOP/s, vendor data sheets) x 40 % sustained
    "A100 (312 TFLOP/s peak, 40% sustained)": 312e12 * 0.4,
    "H100 SXM (989 TFLOP/s peak, 40% sustained)": 989e12 * 0.4,
}
MODELSCOPE_PARAMS = 1.41e9  # UNet3D of damo-vilab/text-to-video-ms-1.7b (the rest: CLIP + VAE)


def timed(fn: Any, repeat: int, warmup: int = 3) -> float:
    """Median milliseconds of ``fn()``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def build_probe(channels: int, directory: Path) -> tuple[Any, Path]:
    """A random-weight probe of the default width exported as a probe directory."""
    import torch

    from vgate.lvd import probe

    torch.manual_seed(0)
    model = probe.ProbeNet(probe.ProbeConfig(channels=channels)).eval()
    directory.mkdir(parents=True)
    probe.export_onnx(model, directory / "probe.onnx")
    meta = {
        "format_version": 1,
        "mode": "shared",
        "graphs": {"*": "probe.onnx"},
        "latent_channels": channels,
        "pipeline": "benchmark",
        "steps": [1],
        "timesteps": [0.98],
        "num_inference_steps": 50,
        "categories": list(probe.CATEGORY_IDS),
    }
    (directory / "probe.json").write_text(json.dumps(meta), encoding="utf-8")
    return model, directory


def count_flops(model: Any, *args: Any, **kwargs: Any) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(*args, **kwargs)
    return int(counter.get_total_flops())


def tiny_unet() -> tuple[Any, str]:
    """(the denoiser of vgate's tiny text-to-video-sd test pipeline, where it comes from)."""
    try:
        from tests.lvdkit import build_tiny_pipeline
    except ImportError:  # the capture helper's module is not there: a similar tiny UNet
        import torch
        from diffusers import UNet3DConditionModel

        torch.manual_seed(0)
        unet = UNet3DConditionModel(
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock3D",),
            up_block_types=("UpBlock3D",),
            block_out_channels=(16,),
            layers_per_block=1,
            norm_num_groups=4,
            cross_attention_dim=16,
            attention_head_dim=8,
        )
        return unet.eval(), "UNet3DConditionModel built in this script"
    return build_tiny_pipeline("text-to-video-sd").unet, "tests.lvdkit text-to-video-sd"


def modelscope_flops(shape: tuple[int, ...]) -> tuple[int, int]:
    """(FLOPs of one CFG denoising step, parameters) of the ModelScope UNet3D, on meta tensors."""
    import torch
    from diffusers import UNet3DConditionModel

    with torch.device("meta"):
        unet = UNet3DConditionModel()
    params = sum(p.numel() for p in unet.parameters())
    b, c, f, h, w = shape
    x = torch.empty((2 * b, c, f, h, w), device="meta")
    text = torch.empty((2 * b, 77, 1024), device="meta")
    flops = count_flops(unet, x, torch.tensor(500, device="meta"), encoder_hidden_states=text)
    return flops, params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS / "probe_speed.json")
    args = parser.parse_args()

    import onnxruntime as ort
    import torch

    from vgate.lvd.runtime import ProbeRuntime

    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    devices = ["cpu", *(["cuda"] if cuda else [])]
    load = os.getloadavg()
    rows: list[dict[str, Any]] = []
    unet, unet_source = tiny_unet()
    unet_params = sum(p.numel() for p in unet.parameters())
    with tempfile.TemporaryDirectory() as tmp:
        probes = {c: build_probe(c, Path(tmp) / f"c{c}") for c in sorted({s[1] for s in SHAPES})}
        for shape in SHAPES:
            model, directory = probes[shape[1]]
            x0 = np.random.default_rng(0).normal(size=shape).astype(np.float32)
            t = torch.full((shape[0],), 0.9)
            row: dict[str, Any] = {
                "shape": list(shape),
                "probe_flops": count_flops(model, torch.from_numpy(x0), t),
                "probe_parameters": sum(p.numel() for p in model.parameters()),
                "probe_onnx_bytes": (directory / "probe.onnx").stat().st_size,
            }
            for device in devices:
                for threads in (None, 1) if device == "cpu" else (None,):
                    runtime = ProbeRuntime(directory, device=device, threads=threads)
                    key = f"probe_ms_{device}" + (f"_{threads}thread" if threads else "")
                    row[key] = round(
                        timed(lambda r=runtime, x=x0: r.scores(x, 1, 0.9), args.repeat), 3
                    )
            if shape[1] == 4:
                latent = torch.from_numpy(np.concatenate([x0, x0]))  # CFG batch
                text = torch.zeros(2, 16, unet.config.cross_attention_dim)
                with torch.no_grad():
                    row["tiny_unet_ms_cpu"] = round(
                        timed(lambda x=latent, e=text: unet(x, 500, encoder_hidden_states=e), 3, 1),
                        2,
                    )
                row["tiny_unet_flops"] = count_flops(unet, latent, 500, encoder_hidden_states=text)
                flops, params = modelscope_flops(shape)
                if abs(params - MODELSCOPE_PARAMS) / MODELSCOPE_PARAMS > 0.02:
                    raise SystemExit(f"UNet3D default config has {params:,} parameters, not 1.41 B")
                row["modelscope_step_flops_estimate"] = flops
                row["probe_to_step_flop_ratio"] = row["probe_flops"] / flops
                row["modelscope_step_ms_estimate"] = {
                    gpu: round(flops / rate * 1000, 1) for gpu, rate in GPU_ASSUMPTIONS.items()
                }
                row["probe_cpu_ms_to_step_ms_estimate"] = {
                    gpu: round(row["probe_ms_cpu"] / ms, 4)
                    for gpu, ms in row["modelscope_step_ms_estimate"].items()
                }
            rows.append(row)
    result = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_average_before": load,
            "load_average_after": os.getloadavg(),
            "platform": platform.platform(),
            "onnxruntime": ort.__version__,
            "torch": torch.__version__,
            "cuda_provider": cuda,
        },
        "tiny_unet": {"source": unet_source, "parameters": unet_params},
        "modelscope_estimate": {
            "model": "damo-vilab/text-to-video-ms-1.7b UNet3D (diffusers UNet3DConditionModel "
            "default config), 1.41 B parameters",
            "method": "torch.utils.flop_counter on meta tensors (matmul/conv/attention FLOPs, "
            "2 per multiply-add), batch 2 for classifier-free guidance, 77 text tokens",
            "throughput_assumptions_flop_per_s": GPU_ASSUMPTIONS,
            "caveat": "an estimate, not a measurement: real step time depends on kernels, "
            "precision and memory bandwidth",
        },
        "repeat": args.repeat,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_table(result)


def print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="LVD probe vs one denoising step (ms; estimates marked ~)")
    cols = ["x̂₀ shape", "probe MFLOP", "probe CPU", "probe CPU 1 thr", "probe CUDA"]
    cols += ["tiny UNet CPU", "~ModelScope TFLOP", "~step A100", "~step H100", "probe/step FLOP"]
    for col in cols:
        table.add_column(col, justify="right")
    for r in result["rows"]:
        est = r.get("modelscope_step_ms_estimate", {})
        table.add_row(
            "x".join(map(str, r["shape"])),
            f"{r['probe_flops'] / 1e6:.0f}",
            f"{r['probe_ms_cpu']:.2f}",
            f"{r['probe_ms_cpu_1thread']:.2f}",
            f"{r['probe_ms_cuda']:.2f}" if "probe_ms_cuda" in r else "-",
            f"{r['tiny_unet_ms_cpu']:.1f}" if "tiny_unet_ms_cpu" in r else "-",
            f"{r['modelscope_step_flops_estimate'] / 1e12:.1f}" if est else "-",
            *(f"{ms:.0f}" for ms in est.values()) if est else ("-", "-"),
            f"{r['probe_to_step_flop_ratio']:.1e}" if est else "-",
        )
    console = Console(width=160)
    console.print(table)
    for r in result["rows"]:
        for gpu, share in r.get("probe_cpu_ms_to_step_ms_estimate", {}).items():
            shape, ratio = "x".join(map(str, r["shape"])), r["probe_to_step_flop_ratio"]
            console.print(
                f"{shape}: probe on CPU = {share:.1%} of one estimated ModelScope step on "
                f"{gpu.split(' (')[0]}; FLOP ratio {ratio:.1e}"
            )
    print(
        f"load average before/after: {result['machine']['load_average_before']} / "
        f"{result['machine']['load_average_after']}"
    )


if __name__ == "__main__":
    main()
