"""LVD evidence on a small text-to-video diffusion model trained here (see README.md)."""
