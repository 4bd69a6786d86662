"""The ``vgate`` command line. Each command parses its options and calls one function."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import click
import typer
from typer.core import TyperArgument

from vgate import __version__
from vgate.errors import EXIT_ERROR, VgateError
from vgate.terminal import terminal_safe

T = TypeVar("T")

app = typer.Typer(
    name="vgate",
    help="Keep unsafe text-to-video content out of content pipelines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
PolicyOption = Annotated[
    str | None,
    typer.Option(
        "--policy",
        "-p",
        metavar="NAME|FILE",
        help="Shipped policy name or path to a YAML policy (default: the .vgate.yaml, vgate.yaml "
        "or pyproject.toml [tool.vgate] found from here up to the repository root, else "
        "'default').",
        show_default=False,
    ),
]
NoConfigOption = Annotated[
    bool,
    typer.Option(
        "--no-config", help="Do not look for .vgate.yaml, vgate.yaml, pyproject.toml, .vgateignore."
    ),
]
DetectorOption = Annotated[
    str | None,
    typer.Option(
        "--detector",
        "-d",
        metavar="NAMES",
        help="rules, model, all, or a comma list (default: the policy's).",
    ),
]
ReportFileOption = Annotated[
    Path | None,
    typer.Option(
        "--output", "-o", metavar="FILE", help="Write the report here (default stdout), atomically."
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        metavar="REF", help="Prompt model: builtin:NAME or a model directory (default: policy's)."
    ),
]


def _no_argument_type(self: TyperArgument, ctx: click.Context) -> None:
    """Arguments show their metavar in --help, not typer's raw type (``<list[str]>``)."""


# A deliberate patch of typer 0.29 (pinned; tests/functional/test_cli_consistency.py guards it).
setattr(TyperArgument, "display_type_rich", _no_argument_type)  # noqa: B010
policy_app = typer.Typer(
    rich_markup_mode=None, help="Validate, show and list policies.", no_args_is_help=True
)
app.add_typer(policy_app, name="policy")


def renamed(value: T | None, old: T | None, name: str, old_name: str) -> T | None:
    """The value of an option, or of its old, hidden spelling with a deprecation warning."""
    if old is None:
        return value
    if value is not None:
        raise VgateError(f"give {name} only ({old_name} is its old, deprecated name)")
    typer.echo(f"vgate: warning: {old_name} is deprecated; use {name}", err=True)
    return old


def required(value: T | None, name: str) -> T:
    """An option that must be given."""
    if value is None:
        raise VgateError(f"missing option {name}")
    return value


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
            metavar="PATH",
            help="Prompt files (.txt, .csv, .jsonl), video files (.mp4, .webm, .mov, .mkv, "
            ".gif, ...), directories (searched recursively) or - for stdin.",
            show_default=False,
        ),
    ] = None,
    text: Annotated[
        list[str] | None,
        typer.Option(
            "--text",
            "-t",
            metavar="PROMPT",
            help="Scan this prompt (repeatable).",
            show_default=False,
        ),
    ] = None,
    policy: PolicyOption = None,
    no_config: NoConfigOption = False,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            metavar="GLOB",
            help="Do not read files matching this gitignore-style glob (repeatable; also "
            ".vgateignore and the policy's files.exclude).",
            show_default=False,
        ),
    ] = None,
    diff_base: Annotated[
        str | None,
        typer.Option(
            "--diff-base",
            metavar="REF",
            help="Read only files changed since the merge base of this git ref and HEAD "
            "(committed or not, and untracked ones), e.g. origin/main on a pull request.",
            show_default=False,
        ),
    ] = None,
    respect_include: Annotated[
        bool,
        typer.Option(
            "--respect-include",
            help="Read a named file only if the policy's files.include (when set) matches it, "
            "as pre-commit needs: it names every changed file.",
        ),
    ] = False,
    detector: DetectorOption = None,
    model: ModelOption = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            metavar="FORMAT",
            help="Report format: table, json, jsonl, sarif, github (annotations), junit or "
            "gitlab (Code Quality).",
        ),
    ] = "table",
    output: ReportFileOption = None,
    report: Annotated[
        list[str] | None,
        typer.Option(
            "--report",
            metavar="FORMAT=PATH",
            help="Also write a report in FORMAT to PATH in the same scan (repeatable), e.g. "
            "--report sarif=vgate.sarif --report junit=vgate.xml.",
            show_default=False,
        ),
    ] = None,
    fail_on: Annotated[
        str,
        typer.Option(
            metavar="LEVEL", help="Exit 1 on findings at or above: block, warn, or never."
        ),
    ] = "block",
    baseline: Annotated[
        Path | None,
        typer.Option(
            metavar="REPORT", help="A previous JSON/JSONL/SARIF report: report only new findings."
        ),
    ] = None,
    column: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="csv column to read (default: prompt, text or caption)."),
    ] = None,
    field: Annotated[
        str | None,
        typer.Option(
            metavar="NAME", help="jsonl field to read (default: prompt, text or caption)."
        ),
    ] = None,
    input_format: Annotated[
        str,
        typer.Option(
            metavar="FORMAT", help="Reader: auto (by extension; stdin is txt), txt, csv or jsonl."
        ),
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
            metavar="ENGINE",
            help="local (this process) or ray (Ray Data, for large parquet/csv/jsonl sets; "
            "needs the ray extra, --output DIR; writes parquet or jsonl).",
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS",
            help="Ray cluster to run on (default: $RAY_ADDRESS, else a local Ray on this machine).",
            show_default=False,
        ),
    ] = None,
    ray_workers: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="Ray scan workers, each loading the model once (default: cluster CPUs - 1).",
            show_default=False,
        ),
    ] = None,
    frames: Annotated[
        int | None,
        typer.Option(
            "--frames",
            metavar="N",
            help="Videos: sample this many frames, evenly spaced (default: the policy's, 16).",
            show_default=False,
        ),
    ] = None,
    fps: Annotated[
        float | None,
        typer.Option(
            "--fps",
            metavar="FPS",
            help="Videos: sample this many frames per second instead.",
            show_default=False,
        ),
    ] = None,
    frame_model: Annotated[
        str | None,
        typer.Option(
            "--frame-model",
            metavar="MODEL",
            help="Videos: an ONNX frame classifier (with --labels), or 'nudenet' if you "
            "installed it (AGPL-3.0; not a vgate dependency).",
            show_default=False,
        ),
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option(
            "--labels",
            metavar="FILE",
            help="Videos: YAML mapping the frame model's outputs to categories, with its input "
            "size, layout and normalisation.",
            show_default=False,
        ),
    ] = None,
    video_time_budget: Annotated[
        float | None,
        typer.Option(
            "--video-time-budget",
            metavar="SECONDS",
            help="Videos: seconds of frame checks per video; frames left when it runs out are "
            "reported as not checked (default: the policy's video.time_budget, no limit).",
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
        no_config=no_config,
        excludes=exclude or [],
        diff_base=diff_base,
        respect_include=respect_include,
        detectors=detector,
        model=model,
        output_format=output_format,
        output=output,
        reports=report or [],
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
        video_time_budget=video_time_budget,
    )
    raise typer.Exit(scan_command(options))


@policy_app.command("check")
def policy_check(
    files: Annotated[
        list[str],
        typer.Argument(metavar="NAME|FILE", help="Policy names or YAML files to validate."),
    ],
) -> None:
    """Validate policies; exit 2 with the file, key path and problem on the first error."""
    from vgate.commands.policy import check_policies

    raise typer.Exit(check_policies(files))


@policy_app.command("show")
def policy_show(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME|FILE",
            help="Policy name or YAML file (default: the discovered config, else 'default').",
            show_default=False,
        ),
    ] = None,
    no_config: NoConfigOption = False,
) -> None:
    """Print a policy as resolved (after 'extends' and defaults) in YAML, and which file it is."""
    from vgate.commands.policy import show_policy
    from vgate.policy.discovery import choose_policy

    choice = choose_policy(name, no_config)
    show_policy(choice.ref, choice.origin)


@policy_app.command("list")
def policy_list() -> None:
    """List the shipped policies."""
    from vgate.commands.policy import list_policies

    list_policies()


@app.command()
def init(
    directory: Annotated[
        Path,
        typer.Argument(metavar="DIR", help="Project folder (default: here).", show_default=False),
    ] = Path("."),
    include: Annotated[
        list[str] | None,
        typer.Option(
            "--include",
            metavar="GLOB",
            help="Prompt files to scan, as files.include globs (repeatable; default: prompts/).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Write a starter .vgate.yaml (extends default, with comments) and
    .github/workflows/vgate.yml (checkout, the vgate Action with annotations, SARIF upload)."""
    from vgate.commands.init import init_project

    raise typer.Exit(init_project(directory, include or [], force=force))


# --- eval and model (prompt-model owner) ---------------------------------------------------------

model_app = typer.Typer(
    rich_markup_mode=None, help="Train the embedded prompt model.", no_args_is_help=True
)
app.add_typer(model_app, name="model")


@app.command("eval")
def eval_(
    data: Annotated[
        Path, typer.Option(metavar="CSV", help="Labelled CSV with columns id,text,label.")
    ],
    model: ModelOption = None,
    policy: PolicyOption = None,
    detector: DetectorOption = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Also write the metrics as JSON here."),
    ] = None,
) -> None:
    """Measure detectors on labelled prompts: unsafe-vs-safe P/R/F1/ROC-AUC, per-category
    metrics, confusion table and calibration error, at the policy's thresholds."""
    from vgate.commands.eval import run_eval
    from vgate.policy.discovery import choose_policy

    run_eval(data, policy=choose_policy(policy).ref, detectors=detector, model=model, output=output)


@model_app.command(
    "train",
    add_help_option=False,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def model_train(ctx: typer.Context) -> None:
    """Train the default prompt model (static + MiniLM cascade) from prompts_train_v2.csv (needs
    the 'train' extra and a source checkout). Options go to training/train_default_model.py;
    try --help."""
    from vgate.commands.model import run_training

    raise typer.Exit(run_training(ctx.args))


# --- guarded generation and the latent probe ----------------------------------------------------

probe_app = typer.Typer(
    help="The Latent Variable Defense probe: collect x̂₀, train, evaluate.", no_args_is_help=True
)
app.add_typer(probe_app, name="probe")
ProgressBarOption = Annotated[
    bool | None,
    typer.Option("--progress/--no-progress", help="Progress bar (default: on a terminal)."),
]
LegacyOutOption = Annotated[  # the old spelling of --out-dir, hidden; see renamed()
    Path | None, typer.Option("--out", "-o", metavar="PATH", hidden=True)
]


def out_dir_option(help_text: str) -> Any:
    """The ``--out-dir DIR`` option of a probe command."""
    return typer.Option("--out-dir", metavar="DIR", help=help_text, show_default=False)


DeviceOption = Annotated[
    str, typer.Option(metavar="DEVICE", help="auto (a CUDA GPU when present), cpu, cuda or cuda:N.")
]
PipelineOption = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        metavar="PIPELINE",
        help="A diffusers text-to-video pipeline: a local directory or a hub id already in the "
        "local Hugging Face cache (nothing is downloaded).",
    ),
]


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(metavar="PROMPT", help="The text prompt.")],
    model: PipelineOption,
    guarded: Annotated[
        bool,
        typer.Option(
            "--guarded/--plain",
            help="Guard with the prompt check, the latent probe (stops unsafe sampling early) "
            "and, when the policy asks, the output frame check. --plain generates unguarded.",
        ),
    ] = False,
    policy: PolicyOption = None,
    probe: Annotated[
        str | None,
        typer.Option(
            metavar="PROBE", help="Probe directory or builtin:NAME (default: generation.probe)."
        ),
    ] = None,
    video: Annotated[
        Path | None,
        typer.Option(
            "--video",
            metavar="FILE",
            help="Video to write (.mp4, .webm, .mkv, .mov, .gif; default: vgate-video.mp4).",
            show_default=False,
        ),
    ] = None,
    steps: Annotated[int, typer.Option(metavar="N", help="Sampling steps.")] = 50,
    seed: Annotated[int, typer.Option(metavar="N", help="Random seed.")] = 0,
    device: DeviceOption = "auto",
    frames: Annotated[
        int | None, typer.Option(metavar="N", help="Frames to generate (default: the pipeline's).")
    ] = None,
    height: Annotated[int | None, typer.Option(metavar="PIXELS", help="Height in pixels.")] = None,
    width: Annotated[int | None, typer.Option(metavar="PIXELS", help="Width in pixels.")] = None,
    fps: Annotated[
        float, typer.Option(metavar="FPS", help="Frame rate of the written video.")
    ] = 8.0,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            metavar="FORMAT",
            help="Report format, as for vgate scan: table, json, jsonl, sarif, github, junit or "
            "gitlab.",
        ),
    ] = "table",
    output: ReportFileOption = None,
    fail_on: Annotated[
        str,
        typer.Option(
            metavar="LEVEL", help="Exit 1 when the verdict is at or above: block, warn, or never."
        ),
    ] = "block",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary line.")] = False,
    frame_model: Annotated[
        str | None,
        typer.Option(
            metavar="MODEL", help="Output gate: ONNX frame classifier (default: video.frame_model)."
        ),
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option(
            metavar="FILE",
            help="Output gate: labels YAML of the frame model (default: video.labels).",
        ),
    ] = None,
    old_out: Annotated[Path | None, typer.Option("--out", metavar="PATH", hidden=True)] = None,
    old_report: Annotated[
        Path | None, typer.Option("--report", metavar="FILE", hidden=True)
    ] = None,
) -> None:
    """Generate a video from a prompt. With --guarded, unsafe prompts are stopped before the
    model runs or after a few sampling steps, and no video is written. Exit 0: written; 1:
    blocked (at or above --fail-on); 2: usage or input error."""
    import importlib.util

    from vgate.commands.generate import GenerateOptions, generate_command
    from vgate.errors import MissingExtraError
    from vgate.policy.discovery import choose_policy

    for module in ("torch", "diffusers"):  # said first, before any prompt is checked
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(module, "generate")

    options = GenerateOptions(
        prompt=prompt,
        model=model,
        guarded=guarded,
        policy=choose_policy(policy).ref,
        probe=probe,
        out=renamed(video, old_out, "--video", "--out") or Path("vgate-video.mp4"),
        steps=steps,
        seed=seed,
        device=device,
        num_frames=frames,
        height=height,
        width=width,
        fps=fps,
        output_format=output_format,
        report=renamed(output, old_report, "--output", "--report"),
        fail_on=fail_on,
        quiet=quiet,
        frame_model=frame_model,
        labels=labels,
    )
    raise typer.Exit(generate_command(options))


@probe_app.command("collect")
def probe_collect(
    model: PipelineOption,
    prompts: Annotated[Path, typer.Option(metavar="CSV", help="Labelled CSV: id,text,label.")],
    out_dir: Annotated[
        Path | None, out_dir_option("Collection directory to write (resumable). Required.")
    ] = None,
    steps: Annotated[
        str,
        typer.Option(metavar="STEPS", help="Sampling steps to store x̂₀ at: 1,2,3,5,10 or 1-20."),
    ] = "1,2,3,5,10",
    num_inference_steps: Annotated[
        int, typer.Option("--schedule", metavar="N", help="Sampling steps of the whole schedule.")
    ] = 50,
    frames: Annotated[int, typer.Option(metavar="N", help="Frames per video.")] = 16,
    height: Annotated[int | None, typer.Option(metavar="PIXELS", help="Height in pixels.")] = None,
    width: Annotated[int | None, typer.Option(metavar="PIXELS", help="Width in pixels.")] = None,
    seed: Annotated[
        int, typer.Option(metavar="N", help="Seed of the first prompt (then +1 per row).")
    ] = 0,
    device: DeviceOption = "auto",
    limit: Annotated[
        int | None, typer.Option(metavar="N", help="Only the first N prompts.")
    ] = None,
    progress: ProgressBarOption = None,
    old_out: LegacyOutOption = None,
) -> None:
    """Run the pipeline on labelled prompts and store x̂₀ at the chosen steps (compressed npz
    shards). Sampling stops after the last chosen step. Rerun to resume."""
    from vgate.lvd.collect import collect_latents, parse_steps

    summary = collect_latents(
        model,
        prompts,
        parse_steps(steps),
        required(renamed(out_dir, old_out, "--out-dir", "--out"), "--out-dir"),
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
        f"{summary.seconds:.1f} s, {summary.denoiser_calls} denoiser calls -> "
        f"{terminal_safe(str(summary.out))}",
        err=True,
    )


CollectionArgument = Annotated[
    Path, typer.Argument(metavar="COLLECTION", help="A directory written by 'vgate probe collect'.")
]


@probe_app.command("train")
def probe_train(
    collection: CollectionArgument,
    out_dir: Annotated[Path | None, out_dir_option("Probe directory to write. Required.")] = None,
    mode: Annotated[
        str,
        typer.Option(
            metavar="MODE",
            help="shared (one probe, timestep as input), per-step (one per step) or auto "
            "(train both, keep the better validation F1).",
        ),
    ] = "auto",
    epochs: Annotated[int, typer.Option(metavar="N", help="Training epochs.")] = 30,
    seed: Annotated[int, typer.Option(metavar="N", help="Random seed (split, init, batches).")] = 0,
    val_fraction: Annotated[
        float, typer.Option(metavar="FRACTION", help="Share of prompts held out for validation.")
    ] = 0.2,
    batch_size: Annotated[int, typer.Option(metavar="N", help="Training batch size.")] = 32,
    lr: Annotated[float, typer.Option(metavar="RATE", help="Learning rate (AdamW).")] = 3e-3,
    width: Annotated[
        int, typer.Option(metavar="N", help="Channels of the probe's conv layers.")
    ] = 32,
    device: DeviceOption = "auto",
    threads: Annotated[
        int | None, typer.Option(metavar="N", help="torch CPU threads (default: torch's).")
    ] = None,
    progress: ProgressBarOption = None,
    old_out: LegacyOutOption = None,
) -> None:
    """Train the latent probe on a collection, print per-step validation metrics and write
    probe.onnx, probe.json and CARD.md (needs the 'generate' extra)."""
    from vgate.commands.probe import run_train

    run_train(
        collection,
        required(renamed(out_dir, old_out, "--out-dir", "--out"), "--out-dir"),
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
    probe: Annotated[str, typer.Option(metavar="PROBE", help="Probe directory or builtin:NAME.")],
    policy: PolicyOption = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write the metrics as JSON here."),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(metavar="PNG", help="Write the accuracy-per-step plot (PNG) here."),
    ] = None,
    split: Annotated[
        str,
        typer.Option(
            metavar="SPLIT", help="all, or validation (only the probe's held-out prompts)."
        ),
    ] = "all",
    device: DeviceOption = "auto",
) -> None:
    """Per-step accuracy of the probe and the compute the policy's stop rule saves on unsafe
    prompts (steps run with and without the defense), single-step threshold vs first-η vote."""
    from vgate.commands.probe import evaluate_probe
    from vgate.policy.discovery import choose_policy

    policy_ref = choose_policy(policy).ref
    evaluate_probe(collection, probe, policy_ref, output, plot, split=split, device=device)


class Terminated(BaseException):
    """SIGTERM (a cancelled CI job): unwinds like Ctrl-C, so no half-written report stays."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _end_on_closed_stdout() -> NoReturn:
    """stdout's reader went away (``vgate scan ... | head -1``): end as other Unix tools do,
    killed by SIGPIPE, with nothing on stderr and no "Exception ignored" at exit."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGPIPE)
    sys.exit(EXIT_ERROR)  # no SIGPIPE (Windows)


def main() -> None:
    """Console entry point: user errors print one line and exit 2, never a traceback."""
    from vgate.reports.output import StdoutClosed, guard_std_streams

    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if on_main_thread else None
    try:
        with guard_std_streams():
            app()
    except VgateError as exc:
        typer.echo(f"vgate: error: {terminal_safe(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("vgate: interrupted", err=True)
        sys.exit(130)
    except Terminated:
        typer.echo("vgate: terminated", err=True)
        sys.exit(143)
    except (StdoutClosed, BrokenPipeError):
        _end_on_closed_stdout()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    main()
