"""The LVD lifecycle from the command line on a tiny pipeline: collect -> train -> eval ->
generate, and the bad-input paths of ``vgate probe`` and ``vgate generate``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import yaml

from tests.helpers import write
from tests.lvdkit import save_tiny_pipeline
from vgate.lvd.shards import read_latents

SIZE = ["--frames", "4", "--height", "32", "--width", "32"]
PROMPTS = """id,text,label
s1,a cat on a skateboard,safe
s2,a dog in a park,safe
s3,a red car on a road,safe
s4,a boat on a lake,safe
u1,a bloody murder scene,violent_bloody
u2,naked people on a beach,pornographic
u3,a man stabbed in an alley,violent_bloody
u4,a nazi rally,political
"""


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread (and do not fight pytest's other work)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny saved pipeline, a collection of x̂₀ at steps 1-3 and a probe trained on it."""
    from vgate.lvd.collect import collect_latents
    from vgate.lvd.train import train_probe

    root = tmp_path_factory.mktemp("lvd")
    model = save_tiny_pipeline("text-to-video-sd", root / "model")
    prompts = write(root / "prompts.csv", PROMPTS)
    collection = root / "collection"
    collect_latents(
        str(model), prompts, [1, 2, 3], collection, num_frames=4, height=32, width=32, limit=6
    )
    probe = root / "probe"
    train_probe(collection, probe, mode="shared", epochs=2, width=8, threads=1, progress=False)
    return {"root": root, "model": model, "prompts": prompts, "collection": collection,
            "probe": probe}  # fmt: skip


def probe_with_channels(root: Path, channels: int) -> Path:
    """A probe trained on a synthetic collection with ``channels`` latent channels."""
    from tests.lvdkit import make_collection
    from vgate.lvd.train import train_probe

    make_collection(root / f"c{channels}", n=12, channels=channels)
    probe = root / f"probe{channels}"
    train_probe(root / f"c{channels}", probe, mode="shared", epochs=1, width=8, threads=1,
                progress=False)  # fmt: skip
    return probe


def policy_file(root: Path, **generation: object) -> Path:
    data = {"extends": "default", "generation": {"check_steps": [1, 2, 3], **generation}}
    return write(root / "policy.yaml", yaml.safe_dump(data))


def test_collect_writes_shards_and_resumes(vgate_main, lifecycle: dict[str, Path]) -> None:
    data = read_latents(lifecycle["collection"])
    assert len(data) == 6 and data.x0.shape == (6, 3, 4, 4, 8, 8)  # [N, S, C, F, H, W]
    assert data.manifest.steps == (1, 2, 3) and data.manifest.latent_channels == 4
    # the same settings resume: the first 6 are kept, the last 2 are added
    args = ["probe", "collect", "--model", str(lifecycle["model"]), "--prompts"]
    copy = lifecycle["root"] / "resumed"
    shutil.copytree(lifecycle["collection"], copy)
    result = vgate_main(*args, str(lifecycle["prompts"]), "--steps", "1-3", "--out", str(copy),
                        *SIZE)  # fmt: skip
    assert result.code == 0, result.stderr
    assert "collected 2 prompts (6 already stored)" in result.stderr
    resumed = read_latents(copy)
    assert len(resumed) == 8
    np.testing.assert_array_equal(resumed.x0[:6], data.x0)  # the stored shards are untouched
    # other settings in the same directory are refused
    result = vgate_main(*args, str(lifecycle["prompts"]), "--steps", "1-4", "--out", str(copy),
                        *SIZE)  # fmt: skip
    assert result.code == 2 and "holds a collection with other settings" in result.stderr


def test_train_and_eval_from_the_cli(vgate_main, lifecycle: dict[str, Path]) -> None:
    root = lifecycle["root"]
    probe = root / "probe-cli"
    result = vgate_main("probe", "train", str(lifecycle["collection"]), "--out", str(probe),
                        "--mode", "per-step", "--epochs", "1", "--width", "8", "--threads", "1",
                        "--no-progress")  # fmt: skip
    assert result.code == 0, result.stderr
    assert {p.name for p in probe.iterdir()} >= {"probe.json", "CARD.md", "probe-step001.onnx"}
    report = root / "eval.json"
    plot = root / "eval.png"
    result = vgate_main("probe", "eval", str(lifecycle["collection"]), "--probe", str(probe),
                        "--policy", str(policy_file(root)), "--output", str(report),
                        "--plot", str(plot))  # fmt: skip
    assert result.code == 0, result.stderr
    metrics = json.loads(report.read_text())
    assert [row["step"] for row in metrics["per_step"]] == [1, 2, 3]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def run_generate(vgate_main, lifecycle: dict[str, Path], *extra: str, **generation: object):
    out = lifecycle["root"] / "video.mp4"
    out.unlink(missing_ok=True)
    result = vgate_main(
        "generate", "a man walking a dog", "--model", str(lifecycle["model"]), "--guarded",
        "--probe", str(lifecycle["probe"]), "--policy",
        str(policy_file(lifecycle["root"], **generation)), "--out", str(out), "--format", "json",
        "--steps", "10", *SIZE, *extra,
    )  # fmt: skip
    return result, out


def test_guarded_generation_stops_at_the_first_flagged_step(
    vgate_main, lifecycle: dict[str, Path]
) -> None:
    # threshold 0: every check flags, so sampling stops at step 1 with one denoiser call
    result, out = run_generate(vgate_main, lifecycle, thresholds={"violent_bloody": 0.0})
    assert result.code == 1, result.stderr
    item = json.loads(result.stdout)["results"][0]
    gen = item["properties"]["generation"]
    assert gen["stopped_by"] == "latent"
    assert (gen["steps_run"], gen["steps_saved"], gen["denoiser_calls"]) == (1, 9, 1)
    assert item["decision"] == "block" and "violent_bloody" in [h["category"] for h in item["hits"]]
    assert not out.exists()


def test_vote_waits_for_the_required_flagged_steps(vgate_main, lifecycle: dict[str, Path]) -> None:
    result, _ = run_generate(
        vgate_main, lifecycle, thresholds={"political": 0.0}, decision="vote", vote_required=3
    )
    gen = json.loads(result.stdout)["results"][0]["properties"]["generation"]
    assert (gen["stopped_by"], gen["steps_run"], gen["denoiser_calls"]) == ("latent", 3, 3)


def test_guarded_generation_writes_the_video_when_nothing_flags(
    vgate_main, lifecycle: dict[str, Path]
) -> None:
    result, out = run_generate(
        vgate_main,
        lifecycle,
        thresholds=dict.fromkeys(
            ["distorted_weird", "terrifying", "pornographic", "violent_bloody", "political"], 1.0
        ),
    )
    assert result.code == 0, result.stderr
    gen = json.loads(result.stdout)["results"][0]["properties"]["generation"]
    assert (gen["stopped_by"], gen["steps_run"], gen["denoiser_calls"]) == (None, 10, 10)
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 4


def test_discard_finishes_sampling_but_writes_no_video(
    vgate_main, lifecycle: dict[str, Path]
) -> None:
    result, out = run_generate(
        vgate_main, lifecycle, thresholds={"pornographic": 0.0}, on_block="discard"
    )
    assert result.code == 1
    gen = json.loads(result.stdout)["results"][0]["properties"]["generation"]
    assert (gen["stopped_by"], gen["steps_run"]) == ("latent", 10)
    assert not out.exists()


def test_plain_generation_runs_every_step(vgate_main, lifecycle: dict[str, Path]) -> None:
    out = lifecycle["root"] / "plain.mp4"
    result = vgate_main(
        "generate",
        "a bloody murder scene",
        "--model",
        str(lifecycle["model"]),
        "--plain",
        "--steps",
        "5",
        "--out",
        str(out),
        "--format",
        "json",
        *SIZE,
    )
    assert result.code == 0, result.stderr  # unguarded: no gate at all
    gen = json.loads(result.stdout)["results"][0]["properties"]["generation"]
    assert (gen["guarded"], gen["steps_run"], gen["denoiser_calls"]) == (False, 5, 5)
    assert out.is_file()


def test_generation_bad_input_is_one_line_exit_2(
    vgate_main, lifecycle: dict[str, Path], tmp_path: Path
) -> None:
    cases = {
        "beyond the schedule of 2 sampling steps": ["--steps", "2"],
        "no such pipeline directory": ["--model", str(tmp_path / "missing")],
        "no CUDA GPU is available": ["--device", "cuda"],
        "expects 16 latent channels": ["--probe", str(probe_with_channels(tmp_path, 16))],
        "unknown device": ["--device", "tpu"],
    }
    if torch.cuda.is_available():
        del cases["no CUDA GPU is available"]
    for message, extra in cases.items():
        result, out = run_generate(vgate_main, lifecycle, *extra)
        assert result.code == 2, (message, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert not out.exists()


NEVER = dict.fromkeys(
    ["distorted_weird", "terrifying", "pornographic", "violent_bloody", "political"], 1.0
)


def test_output_gate_checks_frames_before_writing(
    vgate_main, lifecycle: dict[str, Path], tmp_path: Path
) -> None:
    from tests.videokit import model_and_labels

    frame_model, labels = model_and_labels(tmp_path / "frames")
    frame_args = ["--frame-model", frame_model, "--labels", labels]
    # the latent gate never stops (thresholds 1.0); the frame model then judges the video
    policy = policy_file(lifecycle["root"], thresholds=NEVER, output_check=True)
    data = yaml.safe_load(policy.read_text())
    for threshold, code in ((0.0, 1), (1.0, 0)):
        data["video"] = {"thresholds": {"violent_bloody": threshold}}
        policy.write_text(yaml.safe_dump(data))
        out = tmp_path / f"out-{threshold}.mp4"
        result = vgate_main(
            "generate", "a man walking a dog", "--model", str(lifecycle["model"]), "--guarded",
            "--probe", str(lifecycle["probe"]), "--policy", str(policy), "--out", str(out),
            "--format", "json", "--steps", "4", *SIZE, *frame_args,
        )  # fmt: skip
        assert result.code == code, result.stderr
        item = json.loads(result.stdout)["results"][0]
        gen = item["properties"]["generation"]
        assert gen["steps_run"] == 4  # the output gate needs the whole video
        if code:
            assert gen["stopped_by"] == "output" and not out.exists()
            assert any(r.startswith("output check: violent_bloody") for r in item["reasons"])
        else:
            assert gen["stopped_by"] is None and out.is_file()
    # output_check without a frame model is a configuration error, found before any work
    result = vgate_main(
        "generate", "a man walking a dog", "--model", str(lifecycle["model"]), "--guarded",
        "--probe", str(lifecycle["probe"]), "--policy", str(policy), *SIZE,
    )  # fmt: skip
    assert result.code == 2 and "no frame detector is configured" in result.stderr
