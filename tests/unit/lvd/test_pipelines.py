"""load_pipeline / resolve_device / tiny pipelines: what works and the one-line errors."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from tests.lvdkit import TINY_CALL_KWARGS, build_tiny_pipeline, save_tiny_pipeline
from vgate.errors import MissingExtraError, VgateError
from vgate.lvd import pipelines
from vgate.lvd.capture import run_pipeline
from vgate.lvd.pipelines import (
    SUPPORTED_PIPELINES,
    denoiser,
    latent_channels,
    load_pipeline,
    pipeline_family,
    resolve_device,
    resolve_dtype,
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_pipeline("text-to-video-sd", tmp_path_factory.mktemp("tiny") / "t2v")


def _one_line_error(exc: pytest.ExceptionInfo[VgateError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_load_a_saved_tiny_pipeline_and_generate(saved: Path) -> None:
    pipe = load_pipeline(str(saved), device="cpu")
    assert pipeline_family(pipe) == "TextToVideoSDPipeline"
    assert latent_channels(pipe) == 4
    assert denoiser(pipe) is pipe.unet
    assert pipe.unet.device.type == "cpu" and pipe.unet.dtype == torch.float32
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = run_pipeline(
            pipe, "a cat", num_inference_steps=2, seed=3, **TINY_CALL_KWARGS["text-to-video-sd"]
        )
        again = run_pipeline(
            pipe, "a cat", num_inference_steps=2, seed=3, **TINY_CALL_KWARGS["text-to-video-sd"]
        )
    finally:
        torch.set_num_threads(before)
    assert run.frames is not None and run.frames.shape == (8, 32, 32, 3)
    assert (run.frames == again.frames).all()  # the seed fixes the video
    assert run.steps_run == 2 and run.stopped_at is None and run.seconds > 0


def test_load_with_a_dtype(saved: Path) -> None:
    pipe = load_pipeline(str(saved), device="cpu", dtype="bf16")
    assert pipe.unet.dtype == torch.bfloat16


def test_missing_directory() -> None:
    with pytest.raises(VgateError) as exc:
        load_pipeline("./no/such/dir", device="cpu")
    assert "./no/such/dir: no such pipeline directory" in _one_line_error(exc)


def test_hub_id_not_in_the_local_cache() -> None:
    with pytest.raises(VgateError) as exc:
        load_pipeline("vgate-test-org/not-a-cached-model-0", device="cpu")
    message = _one_line_error(exc)
    assert message.startswith("vgate-test-org/not-a-cached-model-0: ")
    assert "local Hugging Face cache" in message and "does not download" in message


def test_unsupported_pipeline_class(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text(
        json.dumps({"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.42.1"})
    )
    with pytest.raises(VgateError) as exc:
        load_pipeline(str(tmp_path), device="cpu")
    message = _one_line_error(exc)
    assert "StableDiffusionPipeline is not supported" in message
    for name in SUPPORTED_PIPELINES:
        assert name in message


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("no-index", "not a diffusers pipeline directory (no model_index.json)"),
        ("bad-json", "unreadable model_index.json"),
        ("truncated-weights", "cannot load the pipeline"),
        ("missing-component", "cannot load the pipeline"),
    ],
)
def test_corrupt_directories(saved: Path, tmp_path: Path, damage: str, expected: str) -> None:
    broken = shutil.copytree(saved, tmp_path / "broken")
    if damage == "no-index":
        (broken / "model_index.json").unlink()
    elif damage == "bad-json":
        (broken / "model_index.json").write_text("{not json")
    elif damage == "truncated-weights":
        weights = broken / "unet" / "diffusion_pytorch_model.safetensors"
        weights.write_bytes(weights.read_bytes()[:100])
    else:
        shutil.rmtree(broken / "vae")
    with pytest.raises(VgateError) as exc:
        load_pipeline(str(broken), device="cpu")
    assert expected in _one_line_error(exc)


def test_a_file_is_not_a_pipeline(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"x")
    with pytest.raises(VgateError, match="not a pipeline directory"):
        load_pipeline(str(path), device="cpu")


def test_devices(monkeypatch: pytest.MonkeyPatch, saved: Path) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    assert resolve_device("CPU") == "cpu"
    for device in ("cuda", "cuda:1"):
        with pytest.raises(VgateError, match=f"--device {device} asked but no CUDA GPU"):
            resolve_device(device)
    with pytest.raises(VgateError, match="--device cuda asked but no CUDA GPU is available"):
        load_pipeline(str(saved), device="cuda")
    for bad in ("tpu", "cuda:x", "gpu", ""):
        with pytest.raises(VgateError, match="unknown device"):
            resolve_device(bad)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda:0") == "cuda:0"
    with pytest.raises(VgateError, match="only 1 CUDA device"):
        resolve_device("cuda:1")


def test_dtypes() -> None:
    assert resolve_dtype(None, "cpu") is torch.float32
    assert resolve_dtype("fp16", "cpu") is torch.float16
    assert resolve_dtype("bfloat16", "cuda") is torch.bfloat16
    with pytest.raises(VgateError, match="unknown dtype 'int8'"):
        resolve_dtype("int8", "cpu")


def test_missing_diffusers_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(MissingExtraError, match=r"'diffusers'.*vgate\[generate\]"):
        load_pipeline("whatever", device="cpu")
    with pytest.raises(MissingExtraError):
        build_tiny_pipeline()


def test_unknown_tiny_kind() -> None:
    with pytest.raises(
        VgateError, match="unknown tiny pipeline kind 'sdxl'; known: text-to-video-sd"
    ):
        build_tiny_pipeline("sdxl")


def test_scan_path_imports_no_torch() -> None:
    """Importing the LVD modules must not import torch or diffusers (lazy imports)."""
    code = (
        "import sys; import vgate.lvd.capture, vgate.lvd.pipelines, vgate.lvd.latents, "
        "tests.lvdkit; print(sorted(m for m in ('torch', 'diffusers', 'transformers') "
        "if m in sys.modules))"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert pipelines.SUPPORTED_PIPELINES  # the table itself needs no import
