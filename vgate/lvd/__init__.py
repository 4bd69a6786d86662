"""Latent Variable Defense (LVD): read the predicted clean latent x̂₀ during sampling, classify it
with a small probe and stop unsafe generations early.

Modules (torch, diffusers and onnx are imported inside functions, never at import time here):

- ``pipelines``  load a diffusers text-to-video pipeline by id or path; supported classes;
  latent channels and family of a pipeline; device resolution.
- ``capture``    ``LatentTap``: wraps ``pipe.scheduler.step`` to compute x̂₀ at chosen steps,
  counts denoiser calls, stops sampling by raising ``StopSampling`` (no VAE decode).
- ``latents``    one place that turns each pipeline's latent layout into ``[B, C, F, H, W]``.
- ``shards``     the on-disk format of collected latents (compressed npz shards + manifest).
- ``guard``      the stop rule (single-step threshold or first-η vote) as a small state machine.
- ``probe``      the probe network (torch), training, ONNX export.
- ``runtime``    ``ProbeRuntime``: the exported probe under onnxruntime (CUDA or CPU).
- ``collect`` / ``train`` / ``evaluate``  collecting x̂₀, training the probe, measuring the
  defense; ``video_writer`` writes frames to a file. The commands that use them
  (``vgate probe ...``, ``vgate generate``) are in :mod:`vgate.commands`; the tiny test
  pipelines in ``tests/lvdkit.py``.
"""
