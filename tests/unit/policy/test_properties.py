"""Property tests of the policy loader on random YAML-ish text: whatever the document (anchors,
aliases, merge keys, tags, flow and block collections, duplicate keys, stray quotes), loading
gives a policy or a one-line PolicyError of bounded length; never a traceback or a blow-up."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vgate.categories import CATEGORY_IDS
from vgate.errors import PolicyError
from vgate.policy import Policy, load_policy
from vgate.safe_yaml import SHOWN_CHARS

_TMP = Path(tempfile.mkdtemp(prefix="vgate-yaml-props-"))
_FRAGMENTS = [
    *(f"{key}:" for key in ("version", "description", "detectors", "categories", "allow")),
    *(f"{cid}:" for cid in CATEGORY_IDS),
    "threshold:", "action:", "terms:", "patterns:", "phrases:", "prompts:", "extends:",
    "video:", "generation:", "time_budget:", "frames:",
    "\n", "\n  ", "\n    ", " ", "- ", "? ", ": ", ", ", "[", "]", "{", "}", "'", '"', "#",
    "&a ", "&b ", "*a", "*b", "<<: ", "!!float ", "!!int ", "!!str ", "!!binary ", "!!set ",
    "!!timestamp ", "!!python/object:os.system ", "!ruby ", "%YAML 1.1\n", "---\n", "...\n",
    "0x10", "1e400", "-.inf", ".nan", "~", "null", "yes", "0.5", "1", "block", "warn",
    "allow", "rules", "model", "(a+)+$", "(?<!x)y", r"(\w)\1", "nude*", "*", "|\n  ", ">\n  ",
    "\t", "\x1b[2J", "\u202e", "\ufeff", "\x85",
]  # fmt: skip
_DOCUMENT = st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=4)), max_size=60).map(
    "".join
)


@st.composite
def _alias_chains(draw: st.DrawFn) -> str:
    """Anchors each aliasing the previous one ``width`` times: up to width**depth values."""
    width = draw(st.integers(1, 12))
    depth = draw(st.integers(1, 12))
    lines = ['k0: &k0 ["x"]']
    for level in range(1, depth + 1):
        lines.append(f"k{level}: &k{level} [{', '.join([f'*k{level - 1}'] * width)}]")
    key = draw(st.sampled_from(["description", "detectors", "categories", "unknown"]))
    lines.append(f"{key}: *k{depth}")
    return "\n".join(lines) + "\n"


def _load(text: str) -> Policy | None:
    path = _TMP / "p.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        return load_policy(path)
    except PolicyError as exc:
        message = str(exc)
        assert message and "\n" not in message and "\r" not in message
        assert len(message) <= len(str(path)) + 2 * SHOWN_CHARS + 400, message[:500]
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_DOCUMENT)
def test_random_yaml_text_gives_a_policy_or_one_policy_error(text: str) -> None:
    policy = _load(text)
    assert policy is None or isinstance(policy, Policy)


@settings(max_examples=60, deadline=None)
@given(text=_alias_chains())
def test_alias_chains_are_loaded_or_refused_without_expanding(text: str) -> None:
    _load(text)


@settings(max_examples=100, deadline=None)
@given(
    first=st.sampled_from(["categories", "allow", "video", "detectors"]),
    body=st.sampled_from(["{}", "[rules]", "{phrases: [a]}", "{frames: 4}"]),
)
def test_a_repeated_top_level_key_is_always_refused(first: str, body: str) -> None:
    text = f"{first}: {body}\n{first}: {body}\n"
    path = _TMP / "dup.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_policy(path)
    except PolicyError as exc:
        assert f"duplicate key '{first}' (first on line 1)" in str(exc)
    else:
        raise AssertionError("a duplicate key was accepted")
