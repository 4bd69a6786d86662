"""The ``vgate`` command line. Each command parses its options and calls one function."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from vgate import __version__
from vgate.errors import EXIT_ERROR, VgateError

app = typer.Typer(
    name="vgate",
    help="Keep unsafe text-to-video content out of content pipelines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
PolicyOption = Annotated[
    str, typer.Option("--policy", "-p", help="Shipped policy name or path to a YAML policy.")
]
DetectorOption = Annotated[
    str | None,
    typer.Option(
        "--detector", "-d", help="rules, model, all, or a comma list (default: the policy's)."
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(help="Prompt model: builtin:<name> or a model directory (default: policy's)."),
]
policy_app = typer.Typer(help="Validate, show and list policies.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vgate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Keep unsafe text-to-video content out of content pipelines."""


@app.command()
def scan(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Prompt files (.txt, .csv, .jsonl), video files (.mp4, .webm, .mov, .mkv, "
            ".gif, ...), directories (searched recursively) or - for stdin.",
            show_default=False,
        ),
    ] = None,
    text: Annotated[
        list[str] | None,
        typer.Option("--text", "-t", help="Scan this prompt (repeatable).", show_default=False),
    ] = None,
    policy: PolicyOption = "default",
    detector: DetectorOption = None,
    model: ModelOption = None,
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="Report format: table, json, jsonl or sarif.")
    ] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report here (default stdout).")
    ] = None,
    fail_on: Annotated[
        str,
        typer.Option(help="Exit 1 on findings at or above: block, warn, or never."),
    ] = "block",
    baseline: Annotated[
        Path | None,
        typer.Option(help="A previous JSON/JSONL/SARIF report: report only new findings."),
    ] = None,
    column: Annotated[
        str | None, typer.Option(help="csv column to read (default: prompt, text or caption).")
    ] = None,
    field: Annotated[
        str | None, typer.Option(help="jsonl field to read (default: prompt, text or caption).")
    ] = None,
    input_format: Annotated[
        str, typer.Option(help="Reader: auto (by extension; stdin is txt), txt, csv or jsonl.")
    ] = "auto",
    show_all: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Table: list every prompt. SARIF: include waived findings, marked suppressed.",
        ),
    ] = False,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Progress on stderr: a bar on a terminal (the default there for large inputs), "
            "a few log lines elsewhere (e.g. CI).",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No summary line on stderr.")
    ] = False,
    engine: Annotated[
        str,
        typer.Option(
            help="local (this process) or ray (Ray Data, for large parquet/csv/jsonl sets; "
            "needs the ray extra, --output DIR; writes parquet or jsonl).",
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster to run on (default: $RAY_ADDRESS, else a local Ray on this machine).",
            show_default=False,
        ),
    ] = None,
    ray_workers: Annotated[
        int | None,
        typer.Option(
            help="Ray scan workers, each loading the model once (default: cluster CPUs - 1).",
            show_default=False,
        ),
    ] = None,
    frames: Annotated[
        int | None,
        typer.Option(
            "--frames",
            help="Videos: sample this many frames, evenly spaced (default: the policy's, 16).",
            show_default=False,
        ),
    ] = None,
    fps: Annotated[
        float | None,
        typer.Option(
            "--fps", help="Videos: sample this many frames per second instead.", show_default=False
        ),
    ] = None,
    frame_model: Annotated[
        str | None,
        typer.Option(
            "--frame-model",
            help="Videos: an ONNX frame classifier (with --labels), or 'nudenet' if you "
            "installed it (AGPL-3.0; not a vgate dependency).",
            show_default=False,
        ),
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option(
            "--labels",
            help="Videos: YAML mapping the frame model's outputs to categories, with its input "
            "size, layout and normalisation.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Scan prompts and videos and report unsafe ones. Exit 0: nothing at or above --fail-on;
    1: findings; 2: usage error, an unreadable prompt input, or no video could be scanned
    (other inputs are still scanned and reported)."""
    from vgate.commands.scan import ScanOptions, scan_command

    options = ScanOptions(
        paths=paths or [],
        texts=text or [],
        policy=policy,
        detectors=detector,
        model=model,
        output_format=output_format,
        output=output,
        fail_on=fail_on,
        baseline=baseline,
        column=column,
        field=field,
        input_format=input_format,
        show_all=show_all,
        progress=progress,
        quiet=quiet,
        engine=engine,
        ray_address=ray_address,
        ray_workers=ray_workers,
        frames=frames,
        fps=fps,
        frame_model=frame_model,
        labels=labels,
    )
    raise typer.Exit(scan_command(options))


@policy_app.command("check")
def policy_check(
    files: Annotated[list[str], typer.Argument(help="Policy names or YAML files to validate.")],
) -> None:
    """Validate policies; exit 2 with the file, key path and problem on the first error."""
    from vgate.commands.policy import check_policies

    raise typer.Exit(check_policies(files))


@policy_app.command("show")
def policy_show(
    name: Annotated[str, typer.Argument(help="Policy name or YAML file.")] = "default",
) -> None:
    """Print a policy as resolved (after 'extends' and defaults) in YAML."""
    from vgate.commands.policy import show_policy

    show_policy(name)


@policy_app.command("list")
def policy_list() -> None:
    """List the shipped policies."""
    from vgate.commands.policy import list_policies

    list_policies()


# --- eval and model (prompt-model owner) ---------------------------------------------------------

model_app = typer.Typer(help="Train the embedded prompt model.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@app.command("eval")
def eval_(
    data: Annotated[Path, typer.Option(help="Labelled CSV with columns id,text,label.")],
    model: ModelOption = None,
    policy: PolicyOption = "default",
    detector: DetectorOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the metrics as JSON here.")
    ] = None,
) -> None:
    """Measure detectors on labelled prompts: unsafe-vs-safe P/R/F1/ROC-AUC, per-category
    metrics, confusion table and calibration error, at the policy's thresholds."""
    from vgate.commands.eval import run_eval

    run_eval(data, policy=policy, detectors=detector, model=model, output=output)


@model_app.command(
    "train",
    add_help_option=False,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def model_train(ctx: typer.Context) -> None:
    """Train, calibrate, export and quantize the prompt model (needs the 'train' extra and a
    source checkout). Options are passed to training/train_prompt_model.py; try --help."""
    from vgate.commands.model import run_training

    raise typer.Exit(run_training(ctx.args))


# --- guarded generation and the latent probe ----------------------------------------------------

probe_app = typer.Typer(
    help="The Latent Variable Defense probe: collect x̂₀, train, evaluate.", no_args_is_help=True
)
app.add_typer(probe_app, name="probe")
DeviceOption = Annotated[
    str, typer.Option(help="auto (a CUDA GPU when present), cpu, cuda or cuda:N.")
]
PipelineOption = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="A diffusers text-to-video pipeline: a local directory or a hub id already in the "
        "local Hugging Face cache (nothing is downloaded).",
    ),
]


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="The text prompt.")],
    model: PipelineOption,
    guarded: Annotated[
        bool,
        typer.Option(
            "--guarded/--plain",
            help="Guard with the prompt check, the latent probe (stops unsafe sampling early) "
            "and, when the policy asks, the output frame check. --plain generates unguarded.",
        ),
    ] = False,
    policy: PolicyOption = "default",
    probe: Annotated[
        str | None,
        typer.Option(help="Probe directory or builtin:<name> (default: generation.probe)."),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Video to write (.mp4, .webm, .mkv, .mov, .gif).")
    ] = Path("vgate-video.mp4"),
    steps: Annotated[int, typer.Option(help="Sampling steps.")] = 50,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: DeviceOption = "auto",
    frames: Annotated[
        int | None, typer.Option(help="Frames to generate (default: the pipeline's).")
    ] = None,
    height: Annotated[int | None, typer.Option(help="Height in pixels.")] = None,
    width: Annotated[int | None, typer.Option(help="Width in pixels.")] = None,
    fps: Annotated[float, typer.Option(help="Frame rate of the written video.")] = 8.0,
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="Report format: table, json, jsonl or sarif.")
    ] = "table",
    report: Annotated[
        Path | None, typer.Option(help="Write the report here (default stdout).")
    ] = None,
    fail_on: Annotated[
        str, typer.Option(help="Exit 1 when the verdict is at or above: block, warn, or never.")
    ] = "block",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary line.")] = False,
    frame_model: Annotated[
        str | None,
        typer.Option(help="Output gate: ONNX frame classifier (default: video.frame_model)."),
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option(help="Output gate: labels YAML of the frame model (default: video.labels)."),
    ] = None,
) -> None:
    """Generate a video from a prompt. With --guarded, unsafe prompts are stopped before the
    model runs or after a few sampling steps, and no video is written. Exit 0: written; 1:
    blocked (at or above --fail-on); 2: usage or input error."""
    from vgate.commands.generate import GenerateOptions, generate_command

    options = GenerateOptions(
        prompt=prompt,
        model=model,
        guarded=guarded,
        policy=policy,
        probe=probe,
        out=out,
        steps=steps,
        seed=seed,
        device=device,
        num_frames=frames,
        height=height,
        width=width,
        fps=fps,
        output_format=output_format,
        report=report,
        fail_on=fail_on,
        quiet=quiet,
        frame_model=frame_model,
        labels=labels,
    )
    raise typer.Exit(generate_command(options))


@probe_app.command("collect")
def probe_collect(
    model: PipelineOption,
    prompts: Annotated[Path, typer.Option(help="Labelled CSV: id,text,label.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Collection directory (resumable).")],
    steps: Annotated[
        str, typer.Option(help="Sampling steps to store x̂₀ at: 1,2,3,5,10 or 1-20.")
    ] = "1,2,3,5,10",
    num_inference_steps: Annotated[
        int, typer.Option("--schedule", help="Sampling steps of the whole schedule.")
    ] = 50,
    frames: Annotated[int, typer.Option(help="Frames per video.")] = 16,
    height: Annotated[int | None, typer.Option(help="Height in pixels.")] = None,
    width: Annotated[int | None, typer.Option(help="Width in pixels.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the first prompt (then +1 per row).")] = 0,
    device: DeviceOption = "auto",
    limit: Annotated[int | None, typer.Option(help="Only the first N prompts.")] = None,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Progress bar (default: on a terminal)."),
    ] = None,
) -> None:
    """Run the pipeline on labelled prompts and store x̂₀ at the chosen steps (compressed npz
    shards). Sampling stops after the last chosen step. Rerun to resume."""
    from vgate.lvd.collect import collect_latents, parse_steps

    summary = collect_latents(
        model,
        prompts,
        parse_steps(steps),
        out,
        num_inference_steps=num_inference_steps,
        num_frames=frames,
        height=height,
        width=width,
        seed=seed,
        device=device,
        limit=limit,
        progress=progress,
    )
    typer.echo(
        f"vgate: collected {summary.collected} prompts ({summary.skipped} already stored) in "
        f"{summary.seconds:.1f} s, {summary.denoiser_calls} denoiser calls -> {summary.out}",
        err=True,
    )


CollectionArgument = Annotated[
    Path, typer.Argument(help="A directory written by 'vgate probe collect'.")
]


@probe_app.command("train")
def probe_train(
    collection: CollectionArgument,
    out: Annotated[Path, typer.Option("--out", "-o", help="Probe directory to write.")],
    mode: Annotated[
        str,
        typer.Option(
            help="shared (one probe, timestep as input), per-step (one per step) or auto "
            "(train both, keep the better validation F1)."
        ),
    ] = "auto",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed (split, init, batches).")] = 0,
    val_fraction: Annotated[
        float, typer.Option(help="Share of prompts held out for validation.")
    ] = 0.2,
    batch_size: Annotated[int, typer.Option(help="Training batch size.")] = 32,
    lr: Annotated[float, typer.Option(help="Learning rate (AdamW).")] = 3e-3,
    width: Annotated[int, typer.Option(help="Channels of the probe's conv layers.")] = 32,
    device: DeviceOption = "auto",
    threads: Annotated[
        int | None, typer.Option(help="torch CPU threads (default: torch's).")
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Progress bar (default: on a terminal)."),
    ] = None,
) -> None:
    """Train the latent probe on a collection, print per-step validation metrics and write
    probe.onnx, probe.json and CARD.md (needs the 'generate' extra)."""
    from vgate.commands.probe import run_train

    run_train(
        collection,
        out,
        mode=mode,
        epochs=epochs,
        seed=seed,
        val_fraction=val_fraction,
        batch_size=batch_size,
        lr=lr,
        width=width,
        device=device,
        threads=threads,
        progress=progress,
    )


@probe_app.command("eval")
def probe_eval(
    collection: CollectionArgument,
    probe: Annotated[str, typer.Option(help="Probe directory or builtin:<name>.")],
    policy: PolicyOption = "default",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the metrics as JSON here.")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write the accuracy-per-step plot (PNG) here.")
    ] = None,
    split: Annotated[
        str,
        typer.Option(help="all, or validation (only the probe's held-out prompts)."),
    ] = "all",
    device: DeviceOption = "auto",
) -> None:
    """Per-step accuracy of the probe and the compute the policy's stop rule saves on unsafe
    prompts (steps run with and without the defense), single-step threshold vs first-η vote."""
    from vgate.commands.probe import evaluate_probe

    evaluate_probe(collection, probe, policy, output, plot, split=split, device=device)


def main() -> None:
    """Console entry point: user errors print one line and exit 2, never a traceback."""
    try:
        app()
    except VgateError as exc:
        typer.echo(f"vgate: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("vgate: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":
    main()
