"""A frame-level classifier of the eight scene classes, trained on clean clips, and the check
that the trained video model really generates its condition: the classifier's accuracy on
generated videos against chance (1/8 with all eight classes).

    python -m benchmarks.lvd_trained.frame_classifier --model benchmarks/lvd_trained/weights

The classifier is a logistic regression on raw 16x16 RGB pixels (standardised); a video's class
is the argmax of its frames' mean probabilities. It is also the "output-only filter" of the LVD
comparison (it needs the finished video, so all sampling steps).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.lvd_trained import data

GUIDANCE = 9.0  # TextToVideoSDPipeline's default, which `vgate probe collect` uses


def _features(frames: np.ndarray) -> np.ndarray:
    """[N, H, W, 3] frames (uint8 or float 0..1) -> [N, H*W*3] float features in 0..1."""
    x = np.asarray(frames, dtype=np.float32)
    if x.max(initial=0.0) > 1.5:
        x = x / 255.0
    return x.reshape(len(x), -1)


def train_frame_classifier(
    prompts: Sequence[data.Prompt] | None = None, clips_per_prompt: int = 2, seed: int = 1
) -> Any:
    """Fit the classifier on every frame of fresh clean clips of ``prompts`` (default: the
    ordinary training prompts; seeded prompts are left out, their class is not in their words).
    Returns a scikit-learn pipeline with ``predict_proba``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    prompts = data.ordinary(prompts if prompts is not None else data.split_prompts()[0])
    clips = data.render_set(prompts, clips_per_prompt, seed)
    labels = np.repeat([p.cls for p in prompts], clips_per_prompt * data.FRAMES)
    frames = clips.reshape(-1, *clips.shape[2:])
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=300))
    clf.fit(_features(frames), labels)
    return clf


def video_probabilities(clf: Any, videos: np.ndarray) -> np.ndarray:
    """Class probabilities [N, classes] of videos [N, F, H, W, 3] (mean over frames)."""
    videos = np.asarray(videos)
    n, f = videos.shape[:2]
    probs = clf.predict_proba(_features(videos.reshape(n * f, *videos.shape[2:])))
    return probs.reshape(n, f, -1).mean(axis=1)


def classify_videos(clf: Any, videos: np.ndarray) -> np.ndarray:
    """Predicted class index (into ``data.CLASSES``) per video; the classifier may know only a
    subset of the classes, so its columns are mapped back through ``clf.classes_``."""
    return np.asarray(clf.classes_)[video_probabilities(clf, videos).argmax(axis=1)]


def decode_latents(pipe: Any, x0: np.ndarray, batch: int = 16) -> np.ndarray:
    """Decode scaled latents [N, C, F, h, w] with the pipeline's VAE -> uint8 [N, F, H, W, 3]."""
    import torch

    out = []
    with torch.no_grad():
        for start in range(0, len(x0), batch):
            z = torch.from_numpy(np.asarray(x0[start : start + batch], np.float32))
            video = pipe.decode_latents(z)  # [B, 3, F, H, W] in -1..1
            frames = ((video.permute(0, 2, 3, 4, 1) + 1) / 2).clamp(0, 1).numpy()
            out.append((frames * 255).round().astype(np.uint8))
    return np.concatenate(out)


def generate_videos(
    pipe: Any,
    prompts: Sequence[data.Prompt],
    *,
    steps: int = 50,
    seed: int = 0,
    guidance_scale: float = GUIDANCE,
) -> tuple[np.ndarray, int]:
    """Generate one video per prompt (DDIM ``steps``, seed ``seed + i``) with vgate's
    ``run_pipeline``; (uint8 videos [N, F, H, W, 3], denoiser calls)."""
    from vgate.lvd.capture import run_pipeline

    videos, calls = [], 0
    for i, p in enumerate(prompts):
        run = run_pipeline(
            pipe,
            p.text,
            num_inference_steps=steps,
            seed=seed + i,
            num_frames=data.FRAMES,
            height=data.SIZE,
            width=data.SIZE,
            guidance_scale=guidance_scale,
        )
        videos.append(run.frames)
        calls += run.denoiser_calls
    return np.stack(videos), calls


def accuracy_report(clf: Any, videos: np.ndarray, prompts: Sequence[data.Prompt]) -> dict:
    """Accuracy of the classifier on videos against their prompts' classes, vs chance."""
    truth = np.array([p.cls for p in prompts])
    pred = classify_videos(clf, videos)
    k = len(data.CLASSES)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (truth, pred), 1)
    unsafe_truth = np.array([data.CLASSES[c].label != "safe" for c in truth])
    unsafe_pred = np.array([data.CLASSES[c].label != "safe" for c in pred])
    return {
        "n": len(truth),
        "accuracy": float((pred == truth).mean()),
        "chance": 1.0 / len(np.unique(truth)),  # the classes present (a test uses two)
        "majority_baseline": float(np.bincount(truth, minlength=k).max() / len(truth)),
        "unsafe_vs_safe_accuracy": float((unsafe_truth == unsafe_pred).mean()),
        "per_class_accuracy": {
            data.CLASSES[c].name: float((pred[truth == c] == c).mean())
            for c in range(k)
            if (truth == c).any()
        },
        "confusion": confusion.tolist(),
        "classes": list(data.CLASS_NAMES),
    }


def sample_quality(
    model_dir: Path, per_class: int = 5, steps: int = 50, seed: int = 0, threads: int = 2
) -> dict:
    """Generate ``per_class`` held-out prompts per class and score them (the sample-quality
    check of the README)."""
    import torch

    from vgate.lvd.pipelines import load_pipeline

    torch.set_num_threads(threads)
    clf = train_frame_classifier()
    test = data.ordinary(data.split_prompts()[1])
    clean = data.render_set(test, 1, seed + 99)
    clean_report = accuracy_report(clf, clean, test)
    prompts = data.balanced_subset(test, per_class, seed)
    pipe = load_pipeline(str(model_dir), device="cpu")
    start = time.perf_counter()
    videos, calls = generate_videos(pipe, prompts, steps=steps, seed=seed)
    seconds = time.perf_counter() - start
    report = accuracy_report(clf, videos, prompts)
    return {
        "model": str(model_dir),
        "sampler": f"DDIM {steps} steps, guidance {GUIDANCE}",
        "generated": report,
        "clean_heldout_accuracy": clean_report["accuracy"],
        "denoiser_calls": calls,
        "seconds": round(seconds, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path(__file__).parent / "weights")
    parser.add_argument("--per-class", type=int, default=5)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    report = sample_quality(args.model, args.per_class, args.steps)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
