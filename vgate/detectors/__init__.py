"""Detectors map a batch of texts to ``scores[n, 5]`` (columns in ``CATEGORY_IDS`` order).

``DETECTORS`` is the registry of prompt detectors: the name a policy's ``detectors`` list and
``--detectors`` use, mapped to a factory that builds the detector for a policy and a model
reference. Adding a detector is one module with a class that has ``name`` and
``detect(texts) -> Detection`` (see :mod:`vgate.detectors.base`) and one line here. Frame
detectors have their own registry, :data:`vgate.detectors.frames.FRAME_DETECTORS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from vgate.errors import PolicyError

if TYPE_CHECKING:
    from vgate.detectors.base import Detector
    from vgate.policy import Policy

DetectorFactory = Callable[["Policy", str], "Detector"]
"""Builds a detector from the policy and the model reference (``builtin:<name>`` or a path)."""


def _rules(policy: Policy, model_ref: str) -> Detector:
    from vgate.detectors.rules import RulesDetector

    return RulesDetector(policy)


def _prompt_model(policy: Policy, model_ref: str) -> Detector:
    from vgate.detectors.prompt_model import PromptModelDetector

    return PromptModelDetector(model_ref)


DETECTORS: dict[str, DetectorFactory] = {
    "rules": _rules,
    "model": _prompt_model,
}
"""Prompt detectors by name; modules are imported only when a detector is built."""
DEFAULT_DETECTORS = ("rules", "model")
"""The detectors of a policy that does not list any."""


def make_detector(name: str, policy: Policy, model_ref: str) -> Detector:
    """Build the detector registered as ``name``; an unknown name is a PolicyError."""
    factory = DETECTORS.get(name)
    if factory is None:
        raise PolicyError(f"unknown detector {name!r}; expected one of {', '.join(DETECTORS)}")
    return factory(policy, model_ref)
