"""Policies: loading, validation messages (file + key path + expected), extends, decide()."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import write
from vgate.categories import CATEGORY_IDS
from vgate.commands.policy import show_policy
from vgate.core.findings import ALLOW, BLOCK, WARN, Record
from vgate.errors import PolicyError
from vgate.policy import Policy, load_policy, shipped_policies
from vgate.resources import shipped_dir


def policy_file(tmp_path: Path, data: Any, name: str = "p.yaml") -> Path:
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    return write(tmp_path / name, text)


def error_of(path: Path | str) -> str:
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    message = str(info.value)
    assert "\n" not in message, "policy errors are one line"
    return message


def without_name(policy: Policy) -> Policy:
    return dataclasses.replace(policy, name="")


# --- shipped -----------------------------------------------------------------------------------


def test_shipped_policies_load_and_differ_as_documented() -> None:
    assert shipped_policies() == ["default", "permissive", "strict"]
    default, strict, permissive = (load_policy(n) for n in ("default", "strict", "permissive"))
    assert default.name == "default"
    assert set(default.categories) == set(CATEGORY_IDS)
    assert all(cp.action == BLOCK and cp.threshold == 0.3 for cp in strict.categories.values())
    assert permissive.categories["terrifying"].action == ALLOW
    assert permissive.categories["political"].action == WARN
    # extends: keys not overridden come from the parent
    assert permissive.categories["pornographic"].terms == default.categories["pornographic"].terms
    assert strict.allow_phrases == default.allow_phrases
    # lists are replaced, not merged
    assert "sexy" in strict.categories["pornographic"].terms
    assert "sexy" not in default.categories["pornographic"].terms
    assert default.thresholds.dtype == np.float32 and default.thresholds.shape == (5,)


# --- file-level errors -------------------------------------------------------------------------


def test_missing_policy_and_unknown_name(tmp_path: Path) -> None:
    assert "policy file not found" in error_of(tmp_path / "nope.yaml")
    message = error_of("no-such-policy")
    assert "unknown policy 'no-such-policy'" in message and "default" in message
    assert "is a directory" in error_of(str(tmp_path) + "/")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("categories:\n  political: [unclosed\n", "not valid YAML (line 3, column 1)"),
        ("a: b: c\n", "not valid YAML (line 1, column 5)"),
        ("", "policy file is empty"),
        ("- a\n- b\n", "expected a mapping at the top level, got a list"),
        ("just a string\n", "expected a mapping at the top level, got a string"),
    ],
)
def test_malformed_yaml(tmp_path: Path, text: str, expected: str) -> None:
    path = policy_file(tmp_path, text)
    message = error_of(path)
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_non_utf8_policy(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", b"description: caf\xe9\n")
    assert error_of(path) == f"{path}: not a UTF-8 text file"


# --- key and value errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "key_path", "expected"),
    [
        ({"thresholds": 1}, "thresholds", "unknown key; expected one of version, description"),
        ({"categories": {"gore": {}}}, "categories.gore", "unknown key; expected one of"),
        (
            {"categories": {"political": {"treshold": 0.5}}},
            "categories.political.treshold",
            "unknown key; expected one of threshold, action, terms, patterns",
        ),
        ({"allow": {"words": ["x"]}}, "allow.words", "unknown key; expected one of phrases"),
        ({"version": 2}, "version", "expected 1, got 2"),
        ({"version": True}, "version", "expected 1, got True"),
        ({"version": 1.0}, "version", "expected 1, got 1.0"),
        ({"description": ""}, "description", "expected a non-empty string"),
        ({"model": 3}, "model", "expected a non-empty string, got a number"),
        ({"detectors": "rules"}, "detectors", "expected a list of strings, got a string"),
        ({"detectors": []}, "detectors", "expected at least one detector"),
        (
            {"detectors": ["rules", "vision"]},
            "detectors[1]",
            "unknown detector 'vision'; expected rules, model",
        ),
        ({"categories": ["political"]}, "categories", "expected a mapping, got a list"),
        ({"categories": {"political": 0.5}}, "categories.political", "expected a mapping"),
        (
            {"categories": {"political": {"threshold": 1.5}}},
            "categories.political.threshold",
            "expected a number from 0 to 1, got 1.5",
        ),
        (
            {"categories": {"political": {"threshold": -0.1}}},
            "categories.political.threshold",
            "expected a number from 0 to 1",
        ),
        (
            {"categories": {"political": {"threshold": "0.5"}}},
            "categories.political.threshold",
            "expected a number from 0 to 1, got '0.5'",
        ),
        (
            {"categories": {"political": {"threshold": True}}},
            "categories.political.threshold",
            "expected a number from 0 to 1, got True",
        ),
        (
            {"categories": {"political": {"action": "deny"}}},
            "categories.political.action",
            "expected one of block, warn, allow, got 'deny'",
        ),
        (
            {"categories": {"political": {"terms": "nazi"}}},
            "categories.political.terms",
            "expected a list of strings, got a string",
        ),
        (
            {"categories": {"political": {"terms": ["ok", 3]}}},
            "categories.political.terms[1]",
            "expected a non-empty string, got a number",
        ),
        (
            {"categories": {"political": {"patterns": ["ok", "(unclosed"]}}},
            "categories.political.patterns[1]",
            "invalid regular expression: missing ), unterminated subpattern",
        ),
        (
            {"categories": {"political": {"patterns": ["a(?i)b"]}}},
            "categories.political.patterns[0]",
            "invalid regular expression: global flags not at the start",
        ),
        (
            {"categories": {"political": {"patterns": ["a{4294967296}"]}}},
            "categories.political.patterns[0]",
            "invalid regular expression",
        ),
        (
            {"categories": {"political": {"terms": ["ok", " *"]}}},
            "categories.political.terms[1]",
            "expected a word before '*', got ' *'",
        ),
        ({"allow": ["blood orange"]}, "allow", "expected a mapping, got a list"),
        ({"allow": {"phrases": [""]}}, "allow.phrases[0]", "expected a non-empty string"),
        ({"extends": 3}, "extends", "expected a non-empty string, got a number"),
    ],
)
def test_validation_names_file_key_path_and_expectation(
    tmp_path: Path, data: dict[str, Any], key_path: str, expected: str
) -> None:
    path = policy_file(tmp_path, data)
    message = error_of(path)
    assert message.startswith(f"{path}: {key_path}: "), message
    assert expected in message


def test_unknown_key_error_lists_every_allowed_key(tmp_path: Path) -> None:
    message = error_of(policy_file(tmp_path, {"categories": {"political": {"x": 1}}}))
    for key in ("threshold", "action", "terms", "patterns"):
        assert key in message


@pytest.mark.parametrize(
    ("data", "key_path"),
    [
        ({"bad\nkey": 1}, "'bad\\nkey'"),
        ({"": 1}, "''"),
        ({7: 1}, "7"),
        ({"categories": {"political": {" threshold": 0.5}}}, "categories.political.' threshold'"),
    ],
)
def test_odd_unknown_keys_stay_visible_on_one_line(
    tmp_path: Path, data: dict[Any, Any], key_path: str
) -> None:
    path = policy_file(tmp_path, data)
    assert error_of(path).startswith(f"{path}: {key_path}: unknown key; expected one of ")


def test_bad_value_in_an_extended_parent_names_the_parent(tmp_path: Path) -> None:
    parent = policy_file(tmp_path, {"categories": {"political": {"action": "nope"}}}, "base.yaml")
    child = policy_file(tmp_path, {"extends": "base.yaml"}, "child.yaml")
    assert error_of(child).startswith(f"{parent}: categories.political.action: ")


# --- extends -----------------------------------------------------------------------------------


def test_extends_chain_merges_key_by_key(tmp_path: Path) -> None:
    policy_file(
        tmp_path,
        {"extends": "strict", "categories": {"political": {"terms": ["flag burning"]}}},
        "team.yaml",
    )
    policy_file(
        tmp_path,
        {
            "extends": "./team.yaml",
            "description": "project policy",
            "detectors": ["rules"],
            "categories": {"political": {"action": "warn"}},
        },
        "project.yaml",
    )
    project = load_policy(tmp_path / "project.yaml")
    strict = load_policy("strict")
    assert project.description == "project policy"
    assert project.detectors == ("rules",)
    political = project.categories["political"]
    assert political.action == WARN  # from project
    assert political.terms == ("flag burning",)  # from team, replacing strict's list
    assert political.threshold == strict.categories["political"].threshold  # from strict
    assert project.categories["terrifying"] == strict.categories["terrifying"]
    assert project.allow_phrases == strict.allow_phrases


def test_extends_relative_paths_resolve_from_the_extending_file(tmp_path: Path) -> None:
    policy_file(tmp_path / "base", {"detectors": ["rules"]}, "base.yaml")
    policy_file(tmp_path / "teams", {"extends": "../base/base.yaml"}, "t.yaml")
    assert load_policy(tmp_path / "teams" / "t.yaml").detectors == ("rules",)


def test_extends_self_cycle(tmp_path: Path) -> None:
    path = policy_file(tmp_path, {"extends": "p.yaml"})
    message = error_of(path)
    assert "'extends' cycle" in message and message.startswith(str(path))


def test_extends_cycle_through_three_files_names_the_chain(tmp_path: Path) -> None:
    for name, parent in (("a", "b"), ("b", "c"), ("c", "a")):
        policy_file(tmp_path, {"extends": f"{parent}.yaml"}, f"{name}.yaml")
    message = error_of(tmp_path / "a.yaml")
    assert "'extends' cycle" in message
    chain = [Path(p).name for p in message.split("cycle: ")[1].split(" -> ")]
    assert chain == ["a.yaml", "b.yaml", "c.yaml", "a.yaml"]


def test_extends_depth_is_limited(tmp_path: Path) -> None:
    for i in range(12):
        policy_file(tmp_path, {"extends": f"p{i + 1}.yaml"} if i < 11 else {}, f"p{i}.yaml")
    assert load_policy(tmp_path / "p4.yaml").detectors == ("rules", "model")  # 7 levels
    assert "goes deeper than 8 levels" in error_of(tmp_path / "p0.yaml")


def test_extends_missing_parent(tmp_path: Path) -> None:
    path = policy_file(tmp_path, {"extends": "gone.yaml"})
    assert error_of(path) == f"{tmp_path / 'gone.yaml'}: policy file not found"
    assert "unknown policy 'gonename'" in error_of(policy_file(tmp_path, {"extends": "gonename"}))


# --- show round trip ---------------------------------------------------------------------------


def round_trip(policy: Policy, tmp: Path) -> Policy:
    """Load what ``vgate policy show`` prints for ``policy``."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        show_policy(policy.name)
    return load_policy(write(tmp / "shown.yaml", out.getvalue()))


@pytest.mark.parametrize("name", ["default", "strict", "permissive"])
def test_to_dict_round_trips_shipped_policies(tmp_path: Path, name: str) -> None:
    policy = load_policy(name)
    assert without_name(round_trip(policy, tmp_path)) == without_name(policy)


def test_round_trip_without_description(tmp_path: Path) -> None:
    policy = load_policy(policy_file(tmp_path, {"detectors": ["rules"]}))
    assert policy.description == ""
    assert without_name(round_trip(policy, tmp_path)) == without_name(policy)


_WORD = st.text(st.characters(categories=("L", "N")), min_size=1, max_size=8)
_PHRASE = st.lists(_WORD, min_size=1, max_size=3).map(" ".join)
_CATEGORY = st.fixed_dictionaries(
    {},
    optional={
        "threshold": st.floats(0, 1),
        "action": st.sampled_from(["block", "warn", "allow"]),
        "terms": st.lists(st.one_of(_PHRASE, _WORD.map(lambda w: w + "*")), max_size=4),
        "patterns": st.lists(
            st.sampled_from([r"\bfoo\d+", "(?i)bar", r"(a)\1", "x|y"]), max_size=2
        ),
    },
)
_POLICY = st.fixed_dictionaries(
    {},
    optional={
        "version": st.just(1),
        "description": _PHRASE,
        "extends": st.sampled_from(["default", "strict", "permissive"]),
        "detectors": st.lists(st.sampled_from(["rules", "model"]), min_size=1, max_size=2),
        "model": st.sampled_from(["builtin:prompt-minilm", "models/other"]),
        "categories": st.dictionaries(st.sampled_from(CATEGORY_IDS), _CATEGORY),
        "allow": st.fixed_dictionaries(
            {}, optional={"phrases": st.lists(_PHRASE, max_size=3), "prompts": st.lists(_PHRASE)}
        ),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_POLICY)
def test_show_output_loads_back_to_an_equal_policy(data: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        policy = load_policy(policy_file(Path(tmp), data))
        assert without_name(round_trip(policy, Path(tmp))) == without_name(policy)


# --- validation is total -----------------------------------------------------------------------

_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "rules", "model", "block", "warn", "allow", "default", "(", "[a-", "*"]),
    st.text(max_size=10),
)
_KEY = st.one_of(
    st.sampled_from(
        ["version", "description", "extends", "detectors", "model", "categories", "allow",
         "threshold", "action", "terms", "patterns", "phrases", "prompts", *CATEGORY_IDS]
    ),
    st.text(max_size=6),
)  # fmt: skip
_DATA = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_KEY, inner, max_size=5)),
    max_leaves=20,
)
_TMP = Path(tempfile.mkdtemp(prefix="vgate-policy-props-"))


def load_data(data: Any) -> Policy | None:
    """Load YAML of ``data``; None when validation refuses it (always with a PolicyError)."""
    path = _TMP / "p.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    try:
        return load_policy(path)
    except PolicyError as exc:
        assert str(exc) and "\n" not in str(exc)
        return None


@settings(max_examples=200, deadline=None)
@given(data=st.one_of(_DATA, st.dictionaries(_KEY, _DATA, max_size=6)))
def test_validation_raises_only_policy_error_on_arbitrary_data(data: Any) -> None:
    load_data(data)


def _mutations(draw: Any, data: Any, depth: int = 0) -> Any:
    """``data`` with one node replaced, removed, or given an extra key."""
    if isinstance(data, dict) and data and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(data, key=str)))
        data[key] = _mutations(draw, data[key], depth + 1)
        return data
    if isinstance(data, list) and data and draw(st.booleans()):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = _mutations(draw, data[i], depth + 1)
        return data
    choice = draw(st.sampled_from(["replace", "extra-key", "drop"]))
    if choice == "extra-key" and isinstance(data, dict):
        data[draw(_KEY)] = draw(_DATA)
        return data
    if choice == "drop" and isinstance(data, dict | list) and data:
        if isinstance(data, dict):
            del data[draw(st.sampled_from(sorted(data, key=str)))]
        else:
            del data[draw(st.integers(0, len(data) - 1))]
        return data
    return draw(_DATA)


_DEFAULT = load_policy("default").to_dict()


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_validation_raises_only_policy_error_on_mutated_default(data: st.DataObject) -> None:
    mutated = _mutations(data.draw, copy.deepcopy(_DEFAULT))
    policy = load_data(mutated)
    if policy is not None:  # whatever was accepted is complete and well-typed
        assert set(policy.categories) == set(CATEGORY_IDS)
        assert all(0 <= cp.threshold <= 1 for cp in policy.categories.values())
        assert all(cp.action in (BLOCK, WARN, ALLOW) for cp in policy.categories.values())
        assert set(policy.detectors) <= {"rules", "model"} and policy.detectors


# --- decide ------------------------------------------------------------------------------------


def scores(**values: float) -> np.ndarray:
    return np.array([values.get(c, 0.0) for c in CATEGORY_IDS], dtype=np.float32)


def decide(policy: Policy, text: str = "a prompt", suppressed: bool = False, **values: float):
    s = scores(**values)
    return policy.decide(Record(text, "f", 1, suppressed=suppressed), s, {"rules": s})


def test_decide_threshold_is_inclusive_and_strongest_action_wins() -> None:
    policy = load_policy("default")  # terrifying warns, pornographic blocks, both at 0.5
    assert decide(policy, terrifying=0.49).decision == ALLOW
    verdict = decide(policy, terrifying=0.5)
    assert verdict.decision == WARN and [h.category for h in verdict.hits] == ["terrifying"]
    verdict = decide(policy, terrifying=0.9, pornographic=0.7)
    assert verdict.decision == BLOCK
    assert [(h.category, h.action) for h in verdict.hits] == [
        ("terrifying", WARN),
        ("pornographic", BLOCK),
    ]
    assert "pornographic 0.70 >= 0.50 (rules 0.70)" in verdict.reasons


def test_decide_allow_action_never_hits() -> None:
    verdict = decide(load_policy("permissive"), terrifying=1.0, distorted_weird=1.0)
    assert verdict.decision == ALLOW and verdict.hits == []


def test_decide_inline_suppression_and_allow_prompts(tmp_path: Path) -> None:
    verdict = decide(load_policy("default"), suppressed=True, violent_bloody=1.0)
    assert verdict.decision == ALLOW and verdict.suppressed_by == "inline"
    assert [h.category for h in verdict.hits] == ["violent_bloody"]  # still reported
    policy = load_policy(
        policy_file(tmp_path, {"extends": "default", "allow": {"prompts": ["A  Bloody, Mess!"]}})
    )
    waived = decide(policy, "a bloody mess", violent_bloody=1.0)
    assert waived.decision == ALLOW and waived.suppressed_by == "allow-list"
    assert decide(policy, "a bloody mess indeed", violent_bloody=1.0).decision == BLOCK
    # nothing to waive: no suppression recorded
    assert decide(policy, "a bloody mess").suppressed_by is None


def test_bare_name_prefers_the_shipped_policy_over_a_file_in_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "strict").write_text("not: [valid")
    shipped = load_policy(shipped_dir("policies") / "strict.yaml")
    assert load_policy("strict").categories == shipped.categories
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy("./strict")  # a path is still a path
