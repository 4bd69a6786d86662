"""The detector, frame-detector and reporter registries: one line adds an entry, unknown names
are clear errors."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import write
from vgate.categories import CATEGORY_IDS
from vgate.core.gate import Gate, parse_detectors
from vgate.detectors import DEFAULT_DETECTORS, DETECTORS, make_detector
from vgate.detectors.base import Detection
from vgate.detectors.frames import FRAME_DETECTORS, load_frame_detector
from vgate.detectors.prompt_model import PromptModelDetector
from vgate.detectors.rules import RulesDetector
from vgate.errors import PolicyError, VgateError
from vgate.policy import load_policy
from vgate.reports import FORMATS, REPORTERS, make_reporter


class ShoutDetector:
    """Flags prompts written in capitals as ``violent_bloody`` (a test detector)."""

    name = "shout"

    def detect(self, texts: Sequence[str]) -> Detection:
        scores = np.zeros((len(texts), len(CATEGORY_IDS)), np.float32)
        for i, text in enumerate(texts):
            scores[i, CATEGORY_IDS.index("violent_bloody")] = float(text.isupper())
        return Detection(scores)


def test_builtin_detectors_and_defaults(tmp_path: Path) -> None:
    assert tuple(DETECTORS) == ("rules", "model")
    unlisted = write(tmp_path / "p.yaml", "description: no detectors listed\n")
    assert load_policy(unlisted).detectors == DEFAULT_DETECTORS == ("rules", "model")
    policy = load_policy("default")
    assert isinstance(make_detector("rules", policy, policy.model), RulesDetector)


def test_model_detector_takes_builtin_names_and_paths(tmp_path: Path) -> None:
    """The ``model`` detector is the prompt model whatever the reference: builtin or a path."""
    policy = load_policy("default")
    builtin = make_detector("model", policy, "builtin:prompt-static")
    assert isinstance(builtin, PromptModelDetector)
    assert builtin.directory.name == "prompt-static"
    model_dir = tmp_path / "my-model"
    model_dir.mkdir()
    by_path = make_detector("model", policy, str(model_dir))
    assert isinstance(by_path, PromptModelDetector)
    assert by_path.directory == model_dir


def test_unknown_detector_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match="unknown detector 'magic'; expected one of rules, model"):
        make_detector("magic", load_policy("default"), "builtin:prompt-cascade")


def test_a_registered_detector_is_usable_everywhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(DETECTORS, "shout", lambda policy, model: ShoutDetector())
    assert parse_detectors("all") == ("rules", "model", "shout")
    policy = write(tmp_path / "p.yaml", "detectors: [shout]\n")
    gate = Gate(policy)
    assert gate.detector_names == ("shout",)
    verdicts = gate.scan(["A CALM LAKE", "a calm lake"])
    assert [v.decision for v in verdicts] == ["block", "allow"]
    assert "shout 1.00" in verdicts[0].reasons[0]


def test_unregistered_detector_in_a_policy_is_rejected(tmp_path: Path) -> None:
    policy = write(tmp_path / "p.yaml", "detectors: [shout]\n")
    with pytest.raises(PolicyError, match=r"detectors\[0\]: unknown detector 'shout'"):
        load_policy(policy)


def test_frame_detector_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "nudenet" in FRAME_DETECTORS
    sentinel = object()
    monkeypatch.setitem(FRAME_DETECTORS, "fake", lambda: sentinel)
    assert load_frame_detector("fake", None) is sentinel
    with pytest.raises(VgateError, match="needs a labels file"):
        load_frame_detector("not-registered.onnx", None)


def test_reporter_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    assert tuple(REPORTERS) == FORMATS
    with pytest.raises(VgateError, match="unknown report format 'xml'"):
        make_reporter("xml", io.StringIO())
    made: list[bool] = []
    monkeypatch.setitem(REPORTERS, "fake", lambda stream, show_all: made.append(show_all))
    make_reporter("fake", io.StringIO(), show_all=True)
    assert made == [True]
