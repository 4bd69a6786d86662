"""vgate: a command-line gate that keeps unsafe text-to-video content out of content pipelines.

The Python API (the same code path as ``vgate scan``)::

    from vgate import Gate

    gate = Gate(policy="default")           # detectors load lazily, once per process
    gate.scores(["a cat on a skateboard"])  # numpy float32 [n, 5], columns in CATEGORY_IDS order
    gate.scan(["a cat on a skateboard"])    # list of Verdict: decision, hits, scores, reasons

Names are imported on first use (module ``__getattr__``), so ``import vgate`` and ``vgate --help``
stay fast and do not import numpy or onnxruntime.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from vgate.categories import CATEGORY_IDS
    from vgate.core.findings import Verdict
    from vgate.core.gate import Gate
    from vgate.errors import VgateError
    from vgate.policy import Policy, load_policy

_LAZY = {
    "Gate": "vgate.core.gate",
    "Verdict": "vgate.core.findings",
    "Policy": "vgate.policy",
    "load_policy": "vgate.policy",
    "CATEGORY_IDS": "vgate.categories",
    "VgateError": "vgate.errors",
}

__all__ = ["CATEGORY_IDS", "Gate", "Policy", "Verdict", "VgateError", "__version__", "load_policy"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vgate' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
