"""Video scan speed: decoded-and-scored frames/s and seconds per minute of 720p video, 2 cores.

    python benchmarks/video_speed.py            # about 10 minutes on 2 shared cores
    python benchmarks/video_speed.py --seconds 20 --repeat 1   # quicker, rougher

Writes a 1280x720 H.264 clip (30 fps, x264 veryfast, default keyframe interval of 250 frames,
and a second one with a keyframe every 2 s as streaming encoders use), then times
``VideoScanner.scan`` (probe, content hash, sampling with seeks, scaling, scoring, aggregation)
for several samplings and three frame detectors:

- ``decode-only``: a detector that returns zeros at 224x224 (decoding and scaling cost alone);
- ``tiny``: the test's redness classifier (16x16 input; close to decode-only);
- ``cnn-224``: a random-weight depthwise-separable CNN at 224x224 (MobileNet-sized compute, no
  trained weights: speed only), exported from torch.

The process is pinned to 2 CPUs; onnxruntime and the decoder use both. Numbers taken while other
jobs share the machine are noisy; the JSON records the load average.
Writes benchmarks/results/video_speed.json.
"""

from __future__ import annotations

import argparse
import fractions
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from vgate.core.gate import Gate
from vgate.core.video import FrameChecker, VideoScanner
from vgate.detectors.base import Detection
from vgate.detectors.frame_model import OnnxFrameDetector
from vgate.inputs.video import VideoItem, VideoReader
from vgate.policy import load_policy

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.videokit
SAMPLINGS: list[tuple[str, dict[str, Any]]] = [
    ("frames=16", {"frames": 16}),
    ("fps=1", {"fps": 1.0}),
    ("fps=5", {"fps": 5.0}),
    ("every frame (fps=30)", {"fps": 30.0}),
]


def pin_two_cpus() -> list[int]:
    """Run on (at most) 2 CPUs, as the issue asks."""
    try:
        cpus = sorted(os.sched_getaffinity(0))[:2]
        os.sched_setaffinity(0, cpus)
        return cpus
    except AttributeError:  # not Linux
        return []


def write_clip(path: Path, seconds: int, gop: int | None) -> Path:
    """A 720p30 clip with motion and texture (a scrolling pattern plus moving blocks)."""
    import av

    width, height, fps = 1280, 720, 30
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height // 8, width // 8 * 2, 3), dtype=np.uint8)
    texture = texture.repeat(8, axis=0).repeat(8, axis=1)
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"preset": "veryfast", "crf": "23", **({"g": str(gop)} if gop else {})}
    for i in range(seconds * fps):
        shift = (i * 7) % width
        image = np.ascontiguousarray(texture[:, shift : shift + width])
        y = (i * 5) % (height - 120)
        image[y : y + 120, 200:440] = (i * 3 % 256, 80, 200)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = i, fractions.Fraction(1, fps)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def cnn_model(path: Path) -> Path:
    """A MobileNet-sized random CNN ``[N, 3, 224, 224] -> [N, 5]`` (speed only)."""
    import torch
    from torch import nn

    def block(cin: int, cout: int, stride: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.ReLU6(),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(),
        )

    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the TorchScript exporter
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU6()]
    widths = [(16, 24, 2), (24, 24, 1), (24, 40, 2), (40, 40, 1), (40, 80, 2), (80, 80, 1)]
    widths += [(80, 112, 1), (112, 160, 2), (160, 160, 1), (160, 320, 1)]
    layers += [block(cin, cout, s) for cin, cout, s in widths]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(320, 5)]
    model = nn.Sequential(*layers).eval()
    example = torch.zeros(1, 3, 224, 224)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["pixels"],
        output_names=["logits"],
        dynamic_axes={"pixels": {0: "N"}, "logits": {0: "N"}},
        dynamo=False,
    )
    return path


class Zeros:
    """Decode-only: frames scaled to 224x224, scored zero."""

    name = "decode-only"
    input_size = (224, 224)

    def detect_frames(self, frames: np.ndarray) -> Detection:
        return Detection(np.zeros((len(frames), 5), np.float32))


def decoded_frames(path: Path, sampling: dict[str, Any]) -> int:
    """How many frames the reader decodes for ``sampling`` (seeking at work)."""
    checker = FrameChecker(load_policy("default"), detector=Zeros(), **sampling)
    with VideoReader(path, path.name) as reader:
        count = 0
        original = reader._decoded

        def counting():  # type: ignore[no-untyped-def]
            nonlocal count
            for frame in original():
                count += 1
                yield frame

        reader._decoded = counting  # type: ignore[method-assign]
        for _ in reader.frames(checker.sample_times(reader.info.duration), (224, 224)):
            pass
    return count


def time_scan(path: Path, detector: Any, sampling: dict[str, Any], repeat: int) -> dict[str, Any]:
    checker = FrameChecker(load_policy("default"), detector=detector, **sampling)
    scanner = VideoScanner(checker)
    gate = Gate("default", detectors="rules")
    seconds = []
    sampled = 0
    for _ in range(repeat):
        started = time.perf_counter()
        verdicts, issues, _ = scanner.scan(VideoItem(path.name, path), gate)
        seconds.append(time.perf_counter() - started)
        assert not issues, issues
        sampled = verdicts[0].record.media.frames  # type: ignore[union-attr]
    best = min(seconds)
    return {
        "sampled_frames": sampled,
        "seconds": round(statistics.median(seconds), 3),
        "best_seconds": round(best, 3),
        "frames_per_second": round(sampled / best, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="clip length (default 60)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "video_speed.json")
    args = parser.parse_args()
    cpus = pin_two_cpus()
    import av

    from tests.videokit import model_and_labels

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        clips = {
            "h264 720p30, keyframe every 250 frames": write_clip(
                root / "gop250.mp4", args.seconds, None
            ),
            "h264 720p30, keyframe every 2 s": write_clip(root / "gop60.mp4", args.seconds, 60),
        }
        print(f"clips written in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        tiny = OnnxFrameDetector(*model_and_labels(root / "tiny"))
        labels = root / "cnn.yaml"
        labels.write_text(
            "input: {mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}\n"
            "output: {activation: sigmoid}\ncategories: {pornographic: 0, violent_bloody: 1}\n",
            encoding="utf-8",
        )
        cnn = OnnxFrameDetector(cnn_model(root / "cnn.onnx"), labels)
        detectors = {"decode-only": Zeros(), "tiny": tiny, "cnn-224": cnn}
        rows = []
        for clip, path in clips.items():
            for label, sampling in SAMPLINGS:
                decoded = decoded_frames(path, sampling)
                for name, detector in detectors.items():
                    if name == "tiny" and label != "frames=16" and "250" not in clip:
                        continue
                    result = time_scan(path, detector, sampling, args.repeat)
                    per_minute = result["seconds"] * 60 / args.seconds
                    row = {
                        "clip": clip,
                        "sampling": label,
                        "detector": name,
                        "decoded_frames": decoded,
                        **result,
                        "seconds_per_video_minute": round(per_minute, 2),
                    }
                    rows.append(row)
                    print(
                        f"{clip:40} {label:22} {name:12} {result['sampled_frames']:5} sampled "
                        f"{decoded:5} decoded {result['seconds']:7.2f} s "
                        f"{row['seconds_per_video_minute']:7.2f} s/min "
                        f"{result['frames_per_second']:7.1f} frames/s",
                        file=sys.stderr,
                    )
    report = {
        "benchmark": "video_speed",
        "command": "python benchmarks/video_speed.py "
        + " ".join(f"--{k} {v}" for k, v in (("seconds", args.seconds), ("repeat", args.repeat))),
        "clip_seconds": args.seconds,
        "cpus_pinned": cpus,
        "load_average_at_end": list(os.getloadavg()),
        "note": "wall time of VideoScanner.scan (probe, sha256, sampling, scaling, scoring); "
        "seconds = median of the repeats, frames_per_second from the best repeat; machine shared "
        "with other jobs when the load average is above 2",
        "python": platform.python_version(),
        "av": av.__version__,
        "ffmpeg": ".".join(map(str, av.library_versions.get("libavcodec", ()))),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
