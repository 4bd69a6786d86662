"""The policy's ``generation`` and ``video`` sections, and the guarded-generation stop rule."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from vgate.categories import CATEGORY_IDS
from vgate.errors import PolicyError, VgateError
from vgate.lvd.guard import GuardRule, GuardState, first_stop
from vgate.policy import load_policy
from vgate.policy.sections import GenerationPolicy, VideoPolicy

_TMP = Path(tempfile.mkdtemp(prefix="vgate-sections-"))


def load(data: dict[str, Any]):
    path = _TMP / "p.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_policy(path)


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(PolicyError) as info:
        load(data)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_defaults_when_sections_are_absent() -> None:
    policy = load({"extends": "default"})
    assert policy.generation == GenerationPolicy()
    assert policy.video == VideoPolicy()


def test_sections_override_key_by_key_through_extends() -> None:
    base = _TMP / "base.yaml"
    base.write_text(
        yaml.safe_dump({"generation": {"check_steps": [1, 2, 3, 4], "decision": "vote"}}),
        encoding="utf-8",
    )
    policy = load(
        {
            "extends": str(base),
            "generation": {"vote_required": 3, "thresholds": {"political": 0.8}},
            "video": {"aggregate": "vote", "fps": 2},
        }
    )
    gen = policy.generation
    assert (gen.check_steps, gen.decision, gen.vote_required) == ((1, 2, 3, 4), "vote", 3)
    assert gen.thresholds["political"] == 0.8 and gen.thresholds["pornographic"] == 0.5
    assert policy.video.aggregate == "vote" and policy.video.fps == 2.0


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"generation": {"check_step": [1]}}, "generation.check_step: unknown key"),
        ({"generation": {"check_steps": []}}, "generation.check_steps: expected a non-empty list"),
        ({"generation": {"check_steps": [0, 1]}}, "generation.check_steps[0]: expected an integer"),
        ({"generation": {"check_steps": [3, 2]}}, "expected increasing step numbers"),
        ({"generation": {"check_steps": [1.5]}}, "generation.check_steps[0]: expected an integer"),
        ({"generation": {"decision": "majority"}}, "expected one of threshold, vote"),
        ({"generation": {"thresholds": {"gore": 0.5}}}, "generation.thresholds.gore: unknown key"),
        ({"generation": {"thresholds": {"political": 2}}}, "expected a number from 0 to 1"),
        ({"generation": {"on_block": "explode"}}, "expected one of stop, discard"),
        ({"generation": {"output_check": "yes"}}, "expected true or false"),
        ({"generation": {"probe": ""}}, "generation.probe: expected a non-empty string"),
        (
            {"generation": {"decision": "vote", "vote_required": 4, "check_steps": [1, 2]}},
            "4 flagged steps can never happen with 2 check steps",
        ),
        ({"generation": [1]}, "generation: expected a mapping"),
        ({"video": {"frames": 0}}, "video.frames: expected an integer from 1"),
        ({"video": {"aggregate": "mean"}}, "expected one of max, vote"),
        ({"video": {"vote_fraction": -0.1}}, "video.vote_fraction: expected a number"),
        ({"video": {"fps": 0}}, "video.fps: expected a number"),
        ({"video": {"colour": True}}, "video.colour: unknown key"),
    ],
)
def test_bad_sections_name_file_key_and_expectation(section: dict, expected: str) -> None:
    message = error_of(section)
    assert message.startswith(str(_TMP / "p.yaml") + ": ")
    assert expected in message


_SECTION_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 30),
    st.floats(-1, 2, allow_nan=False),
    st.sampled_from(["threshold", "vote", "stop", "discard", "max", "", "builtin:x"]),
    st.lists(st.integers(-1, 12), max_size=5),
    st.dictionaries(st.sampled_from([*CATEGORY_IDS, "x"]), st.floats(-1, 2), max_size=3),
)
_GEN_KEYS = st.sampled_from([*GenerationPolicy().to_dict(), "bogus"])
_VIDEO_KEYS = st.sampled_from([*VideoPolicy().to_dict(), "bogus"])


@settings(max_examples=200, deadline=None)
@given(
    generation=st.dictionaries(_GEN_KEYS, _SECTION_VALUES, max_size=5),
    video=st.dictionaries(_VIDEO_KEYS, _SECTION_VALUES, max_size=5),
)
def test_sections_accept_well_typed_values_and_reject_the_rest_cleanly(
    generation: dict, video: dict
) -> None:
    try:
        policy = load({"generation": generation, "video": video})
    except PolicyError as exc:
        assert "\n" not in str(exc) and ("generation" in str(exc) or "video" in str(exc))
        return
    gen = policy.generation
    assert gen.check_steps and all(isinstance(s, int) and s >= 1 for s in gen.check_steps)
    assert list(gen.check_steps) == sorted(set(gen.check_steps))
    assert all(0 <= t <= 1 for t in gen.thresholds.values()) and len(gen.thresholds) == 5
    assert gen.decision in ("threshold", "vote") and gen.on_block in ("stop", "discard")
    if gen.decision == "vote":
        assert 1 <= gen.vote_required <= len(gen.check_steps)
    assert policy.video.frames >= 1 and policy.video.aggregate in ("max", "vote")
    assert 0 <= policy.video.vote_fraction <= 1


# --- the stop rule -----------------------------------------------------------------------------


def step_scores(**values: float) -> np.ndarray:
    return np.array([values.get(c, 0.0) for c in CATEGORY_IDS], dtype=np.float32)


def rule(data: dict[str, Any]) -> GuardRule:
    return GuardRule.from_policy(load({"extends": "default", "generation": data}))


def test_threshold_rule_stops_at_first_flagged_block_step() -> None:
    r = rule({"check_steps": [1, 2, 5]})
    state = GuardState(r)
    assert not state.observe(1, step_scores(pornographic=0.49))
    assert state.observe(2, step_scores(pornographic=0.5))  # inclusive threshold
    assert state.stopped_at == 2 and state.flagged_steps == [2]
    assert state.hit_categories == ["pornographic"]


def test_warn_categories_are_reported_but_never_stop() -> None:
    r = rule({"check_steps": [1, 2]})  # default: terrifying warns
    state = GuardState(r)
    assert not state.observe(1, step_scores(terrifying=0.99))
    assert not state.observe(2, step_scores(terrifying=0.99))
    assert state.stopped_at is None and state.hit_categories == ["terrifying"]


def test_vote_needs_required_flagged_steps() -> None:
    r = rule({"check_steps": [1, 2, 3, 4], "decision": "vote", "vote_required": 3})
    flagged = step_scores(violent_bloody=0.9)
    clean = step_scores()
    scores = np.stack([flagged, clean, flagged, flagged])
    assert first_stop(r, [1, 2, 3, 4], scores) == 4
    assert first_stop(r, [1, 2, 3, 4], np.stack([flagged, clean, clean, flagged])) is None


@settings(max_examples=100, deadline=None)
@given(
    flags=st.lists(st.booleans(), min_size=1, max_size=8),
    required=st.integers(1, 8),
)
def test_vote_stops_exactly_when_the_count_is_reached(flags: list[bool], required: int) -> None:
    steps = list(range(1, len(flags) + 1))
    required = min(required, len(steps))
    r = rule({"check_steps": steps, "decision": "vote", "vote_required": required})
    scores = np.stack([step_scores(political=1.0 if f else 0.0) for f in flags])
    running = np.cumsum(flags)
    expected = next((s for s, n in zip(steps, running, strict=True) if n >= required), None)
    assert first_stop(r, steps, scores) == expected


def test_schedule_and_collection_mismatches_are_clear_errors() -> None:
    r = rule({"check_steps": [1, 20]})
    with pytest.raises(VgateError, match="check step\\(s\\) 20 beyond the schedule of 10"):
        r.check_schedule(10)
    r.check_schedule(20)
    with pytest.raises(VgateError, match="check step\\(s\\) 20 were not collected"):
        first_stop(r, [1, 2, 3], np.zeros((3, 5), np.float32))
