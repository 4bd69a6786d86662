"""The public Python API: ``from vgate import Gate``, lazy exports, pickling a used Gate."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

import vgate
from tests.helpers import default_model_files
from vgate.categories import CATEGORY_IDS
from vgate.core.findings import BLOCK
from vgate.core.gate import Gate

PROMPTS = [
    "a cat on a skateboard at sunset",
    "a bloody knife fight in an alley",
    "a naked woman in the shower",
    "a zombie horde at night, horror movie",
    "a swastika flag over a parade",
    "a grotesque melting face",
    "",
    "blood orange juice on a table",
    "日本の桜の木",
]
DETECTOR_SETS = ["rules", pytest.param("rules,model", id="rules+model")]
"""Both sets always run: a missing shipped model fails these tests, it never skips them."""


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_import_vgate_and_help_stay_light():
    """``import vgate`` and ``vgate --help`` import neither numpy nor onnxruntime."""
    code = (
        "import sys\n"
        "import vgate\n"
        "assert 'numpy' not in sys.modules, 'import vgate pulled numpy'\n"
        "from vgate.cli import main\n"
        "sys.argv = ['vgate', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('numpy', 'onnxruntime', 'ray', 'pyarrow') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


def test_the_shipped_default_model_is_complete():
    """Every file of the default prompt model ships; for the cascade, both stages' files."""
    import json

    from vgate.detectors.prompt_model import resolve_model_dir
    from vgate.resources import DEFAULT_MODEL

    files = default_model_files()
    missing = [str(f) for f in files if not f.is_file()]
    assert not missing, f"shipped default model incomplete: {missing}"
    config = json.loads((resolve_model_dir(DEFAULT_MODEL) / "config.json").read_text("utf-8"))
    if config.get("kind") == "cascade":
        for ref in (config["first"], config["second"]):
            assert resolve_model_dir(ref) / "model.onnx" in files
    assert any(f.name == "model.onnx" for f in files)


def test_lazy_exports():
    assert vgate.Gate is Gate
    from vgate import CATEGORY_IDS as ids
    from vgate import Verdict, VgateError, load_policy

    assert ids == CATEGORY_IDS
    assert Verdict.__name__ == "Verdict"
    assert issubclass(VgateError, Exception)
    assert load_policy("default").name == "default"
    assert {"Gate", "Verdict", "VgateError"} <= set(dir(vgate))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        vgate.nope  # noqa: B018


@pytest.mark.parametrize("detectors", DETECTOR_SETS)
def test_scores_and_scan(detectors: str):
    gate = Gate(policy="default", detectors=detectors)
    scores = gate.scores(PROMPTS)
    assert scores.dtype == np.float32
    assert scores.shape == (len(PROMPTS), len(CATEGORY_IDS))
    assert ((scores >= 0) & (scores <= 1)).all()
    verdicts = gate.scan(PROMPTS)
    assert [v.record.text for v in verdicts] == PROMPTS
    assert [v.record.line for v in verdicts] == list(range(1, len(PROMPTS) + 1))
    by_text = {v.record.text: v for v in verdicts}
    bloody = by_text["a bloody knife fight in an alley"]
    assert bloody.decision == BLOCK
    assert "violent_bloody" in [h.category for h in bloody.hits]
    assert bloody.reasons and bloody.reasons[0].startswith("violent_bloody")
    np.testing.assert_allclose(np.stack([v.scores for v in verdicts]), scores, atol=1e-6)


@pytest.mark.parametrize("detectors", DETECTOR_SETS)
def test_used_gate_pickles_without_sessions_and_scores_identically(detectors: str):
    gate = Gate(policy="default", detectors=detectors)
    before = gate.scores(PROMPTS)  # loads the detectors (and the ONNX session)
    assert gate._detectors is not None
    data = pickle.dumps(gate)
    assert len(data) < 200_000, "a pickled Gate must not carry model sessions"
    clone = pickle.loads(data)
    assert clone._detectors is None
    assert clone.detector_names == gate.detector_names
    assert clone.policy == gate.policy
    np.testing.assert_array_equal(clone.scores(PROMPTS), before)
    assert [v.decision for v in clone.scan(PROMPTS)] == [v.decision for v in gate.scan(PROMPTS)]
    # the original still works after being pickled
    np.testing.assert_array_equal(gate.scores(PROMPTS), before)


def test_gate_pickles_in_a_fresh_process(tmp_path):
    """A Gate pickled here loads its detectors in another process (as a Ray worker does)."""
    gate = Gate(policy="default", detectors="rules")
    expected = gate.scores(PROMPTS)
    (tmp_path / "gate.pkl").write_bytes(pickle.dumps(gate))
    np.save(tmp_path / "expected.npy", expected)
    code = (
        "import pickle, sys, numpy as np\n"
        f"gate = pickle.loads(open({str(tmp_path / 'gate.pkl')!r}, 'rb').read())\n"
        f"expected = np.load({str(tmp_path / 'expected.npy')!r})\n"
        f"np.testing.assert_array_equal(gate.scores({PROMPTS!r}), expected)\n"
        "print('OK')\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout


@pytest.mark.parametrize("detectors", DETECTOR_SETS)
def test_scores_do_not_depend_on_the_batch(detectors: str):
    """A prompt's scores must not depend on the prompts batched with it: ``vgate scan`` (batches
    of 256), ``Gate.scan`` on a list and Ray workers (their own batches) must agree. A model with
    dynamic int8 quantization breaks this (per-batch activation scales)."""
    gate = Gate(policy="default", detectors=detectors)
    prompts = [f"{p} (take {i})" for i, p in enumerate(PROMPTS * 12)]
    together = gate.scores(prompts)
    chunked = np.concatenate([gate.scores(prompts[i : i + 7]) for i in range(0, len(prompts), 7)])
    alone = np.concatenate([gate.scores([p]) for p in prompts[:20]])
    np.testing.assert_allclose(chunked, together, atol=1e-5)
    np.testing.assert_allclose(alone, together[:20], atol=1e-5)
