"""Policies: loading, validation with clear errors, and the decision on each prompt.

A policy is YAML. Every key is validated; a problem names the file, the key path and what was
expected. ``extends: NAME|PATH`` starts from another policy and overrides it key by key (lists are
replaced, not merged). See the README for the schema.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from vgate.categories import CATEGORY_IDS
from vgate.core.findings import (
    ACTIONS,
    ALLOW,
    Baseline,
    CategoryHit,
    Record,
    Verdict,
    build_verdict,
    normalize_text,
)
from vgate.detectors import DEFAULT_DETECTORS, DETECTORS
from vgate.errors import PolicyError
from vgate.policy.schema import (
    check_choice,
    check_keys,
    check_mapping,
    check_number,
    check_str_list,
    check_string,
    fail,
    kind,
    read_yaml_file,
)
from vgate.policy.sections import (
    GenerationPolicy,
    VideoPolicy,
    build_generation,
    build_video,
    validate_generation,
    validate_video,
)
from vgate.policy.terms import canonical, terms_regex
from vgate.resources import DEFAULT_MODEL, shipped_dir

DEFAULT_THRESHOLD = 0.5
DEFAULT_ACTION = "block"
_MAX_EXTENDS_DEPTH = 8

_TOP_KEYS = {
    "version": "the schema version, 1",
    "description": "free text",
    "extends": "a policy name or path to start from",
    "detectors": f"a list drawn from {', '.join(DETECTORS)}",
    "model": "a model reference: builtin:<name> or a path",
    "categories": "a mapping of category settings",
    "allow": "allow-list settings",
    "generation": "guarded-generation settings (latent probe)",
    "video": "video frame-check settings",
}
_CATEGORY_KEYS = {
    "threshold": "a number from 0 to 1",
    "action": f"one of {', '.join(ACTIONS)}",
    "terms": "a list of words or phrases (a trailing * matches any word ending)",
    "patterns": "a list of regular expressions",
}
_ALLOW_KEYS = {
    "phrases": "a list of phrases ignored by the rules (e.g. 'blood orange')",
    "prompts": "a list of prompts that are never flagged",
}


@dataclass(frozen=True)
class CategoryPolicy:
    """Threshold, action and rules of one category."""

    threshold: float = DEFAULT_THRESHOLD
    action: str = DEFAULT_ACTION
    terms: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    """A validated, resolved policy."""

    name: str
    detectors: tuple[str, ...]
    model: str
    categories: Mapping[str, CategoryPolicy]
    allow_phrases: tuple[str, ...] = ()
    allow_prompts: frozenset[str] = frozenset()
    description: str = ""
    generation: GenerationPolicy = field(default_factory=GenerationPolicy)
    video: VideoPolicy = field(default_factory=VideoPolicy)

    @cached_property
    def _allow_regex(self) -> re.Pattern[str] | None:
        return terms_regex(self.allow_phrases)

    def mask_allowed(self, text: str) -> str:
        """Blank out allow-list phrases (``blood orange``) so that no detector sees them."""
        if self._allow_regex is None:
            return text
        canonical_text = canonical(text)
        if self._allow_regex.search(canonical_text) is None:
            return text
        return self._allow_regex.sub(" ", canonical_text)

    @property
    def thresholds(self) -> np.ndarray:
        """Per-category thresholds, ``[5]`` in ``CATEGORY_IDS`` order."""
        return np.array([self.categories[c].threshold for c in CATEGORY_IDS], dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        """The resolved policy as plain data (``vgate policy show``)."""
        return {
            "version": 1,
            **({"description": self.description} if self.description else {}),
            "detectors": list(self.detectors),
            "model": self.model,
            "categories": {
                cid: {
                    "threshold": cp.threshold,
                    "action": cp.action,
                    "terms": list(cp.terms),
                    "patterns": list(cp.patterns),
                }
                for cid, cp in self.categories.items()
            },
            "allow": {"phrases": list(self.allow_phrases), "prompts": sorted(self.allow_prompts)},
            "generation": self.generation.to_dict(),
            "video": self.video.to_dict(),
        }

    def decide(
        self,
        record: Record,
        scores: np.ndarray,
        detector_scores: dict[str, np.ndarray],
        evidence: Mapping[str, list[str]] | None = None,
        *,
        notes: Sequence[str] = (),
        baseline: Baseline | None = None,
    ) -> Verdict:
        """Turn the combined scores of one record into its final verdict (with ``notes``; hits
        waived inline, by the allow-list or by ``baseline`` are allowed)."""
        hits: list[CategoryHit] = []
        reasons: list[str] = []
        for i, cid in enumerate(CATEGORY_IDS):
            cp = self.categories[cid]
            score = float(scores[i])
            if cp.action == ALLOW or score < cp.threshold:
                continue
            hits.append(CategoryHit(cid, score, cp.threshold, cp.action))
            parts = [f"{name} {float(s[i]):.2f}" for name, s in detector_scores.items()]
            matched = (evidence or {}).get(cid)
            if matched:
                parts.append("matched " + ", ".join(repr(m) for m in matched[:5]))
            reasons.append(f"{cid} {score:.2f} >= {cp.threshold:.2f} ({'; '.join(parts)})")
        waiver = None
        if hits and record.suppressed:
            waiver = "inline"
        elif hits and normalize_text(record.text) in self.allow_prompts:
            waiver = "allow-list"
        return build_verdict(
            record,
            scores,
            detector_scores,
            hits,
            reasons,
            waiver=waiver,
            notes=notes,
            baseline=baseline,
        )


def shipped_policies() -> list[str]:
    """Names of the policies shipped with vgate."""
    return sorted(p.stem for p in shipped_dir("policies").glob("*.yaml"))


def load_policy(ref: str | Path) -> Policy:
    """Load and validate a policy by shipped name (``default``) or by path."""
    data, name = _load_resolved(str(ref), depth=0, seen=())
    return _build(data, name)


def _resolve_path(ref: str) -> tuple[Path, str]:
    """A shipped policy for a bare name (``strict``), else a file path."""
    path = Path(ref)
    shipped = shipped_dir("policies") / f"{ref}.yaml"
    looks_like_path = path.suffix in (".yaml", ".yml") or "/" in ref or "\\" in ref
    if not looks_like_path and shipped.is_file():
        return shipped, ref
    if looks_like_path or path.exists():
        return path, str(path)
    raise PolicyError(
        f"unknown policy '{ref}': not a file, and not a shipped policy "
        f"({', '.join(shipped_policies())})"
    )


def _load_resolved(ref: str, depth: int, seen: tuple[Path, ...]) -> tuple[dict[str, Any], str]:
    """Read a policy file and merge it over the policy it extends."""
    if depth > _MAX_EXTENDS_DEPTH:
        raise PolicyError(f"{ref}: 'extends' goes deeper than {_MAX_EXTENDS_DEPTH} levels")
    path, name = _resolve_path(ref)
    if path.resolve() in seen:
        chain = " -> ".join(str(p) for p in (*seen, path.resolve()))
        raise PolicyError(f"{name}: 'extends' cycle: {chain}")
    data = _read_yaml(path, name)
    _validate(data, name)
    parent = data.pop("extends", None)
    if parent is None:
        return data, name
    if not Path(parent).is_absolute() and ("/" in parent or parent.endswith((".yaml", ".yml"))):
        parent = str(path.parent / parent)
    base, _ = _load_resolved(parent, depth + 1, (*seen, path.resolve()))
    return _merge(base, data), name


def _read_yaml(path: Path, name: str) -> dict[str, Any]:
    data = read_yaml_file(path, name, "policy")
    if not isinstance(data, dict):
        raise PolicyError(f"{name}: expected a mapping at the top level, got {kind(data)}")
    return data


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _validate(data: dict[str, Any], name: str) -> None:
    """Check every key and value of one policy file (before merging)."""
    check_keys(name, "", data, _TOP_KEYS)
    if "version" in data and (type(data["version"]) is not int or data["version"] != 1):
        raise fail(name, "version", f"expected 1, got {data['version']!r}")
    for key in ("description", "extends", "model"):
        if key in data:
            check_string(name, key, data[key])
    if "detectors" in data:
        detectors = data["detectors"]
        check_str_list(name, "detectors", detectors)
        for i, det in enumerate(detectors):
            if det not in DETECTORS:
                expected = ", ".join(DETECTORS)
                raise fail(
                    name, f"detectors[{i}]", f"unknown detector {det!r}; expected {expected}"
                )
        if not detectors:
            raise fail(name, "detectors", "expected at least one detector")
    categories = check_mapping(name, "categories", data.get("categories", {}))
    check_keys(name, "categories", categories, dict.fromkeys(CATEGORY_IDS, ""))
    for cid, settings in categories.items():
        _validate_category(name, f"categories.{cid}", settings)
    allow = check_mapping(name, "allow", data.get("allow", {}))
    check_keys(name, "allow", allow, _ALLOW_KEYS)
    for key in allow:
        check_str_list(name, f"allow.{key}", allow[key])
    if "generation" in data:
        validate_generation(name, data["generation"])
    if "video" in data:
        validate_video(name, data["video"])


def _validate_category(name: str, prefix: str, value: object) -> None:
    settings = check_mapping(name, prefix, value)
    check_keys(name, prefix, settings, _CATEGORY_KEYS)
    if "threshold" in settings:
        check_number(name, f"{prefix}.threshold", settings["threshold"], 0, 1)
    if "action" in settings:
        check_choice(name, f"{prefix}.action", settings["action"], ACTIONS)
    for key in ("terms", "patterns"):
        if key in settings:
            check_str_list(name, f"{prefix}.{key}", settings[key])
    for i, term in enumerate(settings.get("terms", [])):
        if not term.removesuffix("*").strip():  # a bare '*' would match every prompt
            raise fail(name, f"{prefix}.terms[{i}]", f"expected a word before '*', got {term!r}")
    for i, pattern in enumerate(settings.get("patterns", [])):
        try:
            re.compile(pattern, re.IGNORECASE)  # as the rules detector compiles it
        except (re.error, OverflowError, RecursionError) as exc:
            raise fail(
                name, f"{prefix}.patterns[{i}]", f"invalid regular expression: {exc}"
            ) from None


def _build(data: dict[str, Any], name: str) -> Policy:
    categories = {}
    for cid in CATEGORY_IDS:
        settings = data.get("categories", {}).get(cid, {})
        categories[cid] = CategoryPolicy(
            threshold=float(settings.get("threshold", DEFAULT_THRESHOLD)),
            action=settings.get("action", DEFAULT_ACTION),
            terms=tuple(settings.get("terms", ())),
            patterns=tuple(settings.get("patterns", ())),
        )
    allow = data.get("allow", {})
    return Policy(
        name=name,
        detectors=tuple(data.get("detectors", DEFAULT_DETECTORS)),
        model=data.get("model", DEFAULT_MODEL),
        categories=categories,
        allow_phrases=tuple(allow.get("phrases", ())),
        allow_prompts=frozenset(normalize_text(p) for p in allow.get("prompts", ())),
        description=data.get("description", ""),
        generation=build_generation(name, data.get("generation", {})),
        video=build_video(name, data.get("video", {})),
    )
