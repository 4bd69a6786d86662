"""``vgate generate``: text-to-video generation, plain or guarded by the three gates.

Guarded generation runs, in order:

1. the prompt gate (the scan detectors and the policy): a blocked prompt never reaches the model;
2. the latent gate: at the policy's check steps the probe scores x̂₀, and the stop rule
   (:mod:`vgate.lvd.guard`) aborts sampling, so the remaining steps and the VAE decode never run;
3. the output gate (``generation.output_check``): the frame check of ``vgate scan`` on the video
   before it is written.

The outcome is one :class:`~vgate.core.findings.Verdict` for the prompt, reported in any scan
format; its ``properties["generation"]`` say where it stopped and how many steps were saved.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from vgate.categories import CATEGORY_IDS
from vgate.core.findings import (
    ALLOW,
    BLOCK,
    CategoryHit,
    Record,
    ScanMeta,
    ScanSummary,
    Verdict,
    strongest_action,
)
from vgate.core.gate import Gate
from vgate.core.runner import FAIL_ON, exit_code
from vgate.errors import VgateError
from vgate.inputs.prompts import printable
from vgate.lvd.guard import GuardRule, GuardState
from vgate.policy import Policy, load_policy
from vgate.reports import FORMATS, make_reporter

DEFAULT_OUT = Path("vgate-video.mp4")


@dataclass
class GenerateOptions:
    """The options of ``vgate generate`` as parsed by the CLI."""

    prompt: str
    model: str
    guarded: bool = False
    policy: str = "default"
    probe: str | None = None
    out: Path = DEFAULT_OUT
    steps: int = 50
    seed: int = 0
    device: str = "auto"
    num_frames: int | None = None
    height: int | None = None
    width: int | None = None
    fps: float = 8.0
    output_format: str = "table"
    report: Path | None = None
    fail_on: str = BLOCK
    quiet: bool = False
    frame_model: str | None = None
    labels: str | None = None


@dataclass
class Outcome:
    """What happened to one generation, before it is reported."""

    stage: str | None  # prompt | latent | output | None (passed every gate)
    verdict: Verdict
    video: Path | None
    steps_run: int
    denoiser_calls: int
    seconds: float


def resolve_probe(o: GenerateOptions, policy: Policy) -> str:
    """The probe to guard with: ``--probe``, else the policy's ``generation.probe``."""
    probe = o.probe or policy.generation.probe
    if not probe:
        raise VgateError(
            "guarded generation needs a latent probe for this model family: pass --probe DIR or "
            "set generation.probe in the policy (train one with 'vgate probe collect' and "
            "'vgate probe train')"
        )
    return probe


def _latent_verdict(
    record: Record, policy: Policy, state: GuardState, prompt_scores: np.ndarray
) -> Verdict:
    """The verdict of the latent gate from what the guard saw."""
    gen = policy.generation
    hits, reasons = [], []
    for i, cid in enumerate(CATEGORY_IDS):
        if not state.hits[i]:
            continue
        action = policy.categories[cid].action
        threshold = gen.thresholds[cid]
        hits.append(CategoryHit(cid, float(state.max_scores[i]), threshold, action))
        reasons.append(
            f"latent probe: {cid} {state.max_scores[i]:.2f} >= {threshold:.2f} "
            f"at step(s) {', '.join(map(str, state.flagged_steps or state.checked_steps))}"
        )
    decision = strongest_action(hits)
    return Verdict(
        record=record,
        scores=np.maximum(state.max_scores, prompt_scores),
        detector_scores={"prompt": prompt_scores, "probe": state.max_scores.copy()},
        decision=decision,
        hits=hits,
        reasons=reasons,
    )


def generate(o: GenerateOptions, policy: Policy) -> Outcome:
    """Run the gates and the pipeline; write the video when every gate passes."""
    started = time.perf_counter()
    record = Record(o.prompt, str(o.out), 0)
    prompt_scores = np.zeros(len(CATEGORY_IDS), np.float32)
    prompt_verdict: Verdict | None = None
    checker = None
    if o.guarded:
        probe_ref = resolve_probe(o, policy)  # configuration errors fail before any work
        checker = _output_checker(o, policy)
        gate = Gate(policy)
        prompt_verdict = gate.judge([record])[0]
        prompt_scores = prompt_verdict.scores
        if prompt_verdict.decision == BLOCK:
            prompt_verdict.reasons.append("prompt gate: the model was not run")
            return Outcome("prompt", prompt_verdict, None, 0, 0, time.perf_counter() - started)

    from vgate.lvd.capture import run_pipeline
    from vgate.lvd.pipelines import latent_channels, load_pipeline, pipeline_family, resolve_device

    state: GuardState | None = None
    on_x0 = None
    check_steps = None
    device = resolve_device(o.device)
    if o.guarded:  # cheap checks before the (slow) pipeline load
        from vgate.lvd.runtime import ProbeRuntime

        rule = GuardRule.from_policy(policy)
        rule.check_schedule(o.steps)
        probe_device = "auto" if device.startswith("cuda") else "cpu"
        probe = ProbeRuntime(probe_ref, device=probe_device)
        probe.check_steps(rule.check_steps)
    pipe = load_pipeline(o.model, device=device)
    if o.guarded:
        probe.check_compatible(latent_channels(pipe), pipeline_family(pipe))
        state = GuardState(rule)
        check_steps = rule.check_steps
        stop_on_block = policy.generation.on_block == "stop"

        def on_x0(step: int, timestep: float, x0: Any) -> bool:
            latents = x0.detach().float().cpu().numpy()
            scores = probe.scores(latents, step, timestep)[0]
            return state.observe(step, scores) and stop_on_block

    size: dict[str, Any] = {
        k: v
        for k, v in (("num_frames", o.num_frames), ("height", o.height), ("width", o.width))
        if v is not None
    }
    run = run_pipeline(
        pipe,
        o.prompt,
        steps=check_steps,
        on_x0=on_x0,
        num_inference_steps=o.steps,
        seed=o.seed,
        **size,
    )
    verdict = (
        _latent_verdict(record, policy, state, prompt_scores)
        if state is not None
        else Verdict(record, prompt_scores, {}, ALLOW)
    )
    if prompt_verdict is not None and prompt_verdict.hits:  # warn-level prompt hits
        verdict.hits = prompt_verdict.hits + verdict.hits
        verdict.reasons = prompt_verdict.reasons + verdict.reasons
        verdict.decision = strongest_action(verdict.hits)
    stage = "latent" if verdict.decision == BLOCK and state is not None else None
    if run.stopped_at is not None:
        saved = o.steps - run.stopped_at
        verdict.reasons.append(
            f"stopped at step {run.stopped_at} of {o.steps}: {saved} denoising steps and the "
            "VAE decode saved"
        )
    video = None
    if stage is None and run.frames is not None and checker is not None:
        verdict, stage = _output_check(verdict, checker.check(run.frames, o.fps, str(o.out)))
    if stage is None and run.frames is not None:
        from vgate.lvd.video_writer import write_video

        video = write_video(run.frames, o.out, fps=o.fps)
    elif stage is not None and run.frames is not None:
        verdict.reasons.append(f"{stage} gate: video discarded, not written")
    return Outcome(
        stage, verdict, video, run.steps_run, run.denoiser_calls, time.perf_counter() - started
    )


def _output_checker(o: GenerateOptions, policy: Policy) -> Any:
    """The frame checker of the output gate (loaded now), or None when the policy skips it."""
    if not policy.generation.output_check:
        return None
    from vgate.core.video import FrameChecker

    checker = FrameChecker(policy, frame_model=o.frame_model, labels=o.labels)
    if checker.detector is None:
        raise VgateError(
            "generation.output_check is on but no frame detector is configured: set "
            "video.frame_model and video.labels in the policy, or pass --frame-model and --labels"
        )
    return checker


def _output_check(verdict: Verdict, frame_verdict: Verdict) -> tuple[Verdict, str | None]:
    """The output gate: merge the frame check of the generated video into the verdict."""
    if not frame_verdict.hits:
        return verdict, None
    verdict.hits = verdict.hits + frame_verdict.hits
    verdict.reasons = verdict.reasons + [f"output check: {r}" for r in frame_verdict.reasons]
    verdict.detector_scores.update(frame_verdict.detector_scores)
    verdict.scores = np.maximum(verdict.scores, frame_verdict.scores)
    verdict.decision = strongest_action(verdict.hits)
    return verdict, "output" if verdict.decision == BLOCK else None


def _validate(o: GenerateOptions) -> None:
    if o.output_format not in FORMATS:
        raise VgateError(f"--format must be one of {', '.join(FORMATS)}, got '{o.output_format}'")
    if o.fail_on not in FAIL_ON:
        raise VgateError(f"--fail-on must be one of {', '.join(FAIL_ON)}, got '{o.fail_on}'")
    if not o.prompt.strip():
        raise VgateError("the prompt is empty")
    if o.steps < 1:
        raise VgateError(f"--steps must be at least 1, got {o.steps}")


def generate_command(o: GenerateOptions) -> int:
    """Run ``vgate generate`` and report like ``vgate scan``; returns the exit code."""
    _validate(o)
    policy = load_policy(o.policy)
    outcome = generate(o, policy)
    verdict = outcome.verdict
    verdict.properties["generation"] = {
        "guarded": o.guarded,
        "model": o.model,
        "stopped_by": outcome.stage,
        "steps_total": o.steps,
        "steps_run": outcome.steps_run,
        "steps_saved": o.steps - outcome.steps_run,
        "denoiser_calls": outcome.denoiser_calls,
        "video": str(outcome.video) if outcome.video else None,
        "seconds": round(outcome.seconds, 3),
    }
    summary = ScanSummary(seconds=outcome.seconds)
    summary.add(verdict)
    meta = ScanMeta(
        policy=o.policy,
        detectors=["rules", "model", "probe"] if o.guarded else [],
        command_line=["vgate", *(printable(arg) for arg in sys.argv[1:])],
        start_time_utc=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        fail_on=o.fail_on,
        working_directory=str(Path.cwd()),
    )
    _write_report(o, meta, verdict, summary)
    if not o.quiet:
        print(_summary_line(o, outcome), file=sys.stderr)
    return exit_code(summary, o.fail_on)


def _write_report(o: GenerateOptions, meta: ScanMeta, verdict: Verdict, summary: Any) -> None:
    stream = sys.stdout
    if o.report is not None:
        try:
            stream = o.report.open("w", encoding="utf-8", newline="\n")
        except OSError as exc:
            raise VgateError(f"{o.report}: cannot write report ({exc.strerror or exc})") from None
    try:
        reporter = make_reporter(o.output_format, stream, show_all=True)
        reporter.start(meta)
        reporter.add(verdict)
        reporter.finish(summary)
    finally:
        if stream is not sys.stdout:
            stream.close()


def _summary_line(o: GenerateOptions, outcome: Outcome) -> str:
    if outcome.stage is not None:
        return (
            f"vgate: blocked by the {outcome.stage} gate after {outcome.steps_run} of {o.steps} "
            f"steps ({o.steps - outcome.steps_run} saved); no video written"
        )
    wrote = f"wrote {outcome.video}" if outcome.video else "no video written"
    return f"vgate: generated {outcome.steps_run} steps in {outcome.seconds:.1f} s; {wrote}"
