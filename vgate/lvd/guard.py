"""The stop rule of guarded generation, as a small state machine over probe scores.

At each check step the probe scores x̂₀ (``[5]``, CATEGORY_IDS order). A step is *flagged* when a
category whose policy action is ``block`` reaches its ``generation.thresholds`` value. With
``decision: threshold`` the first flagged step stops sampling; with ``decision: vote`` sampling
stops once ``vote_required`` check steps are flagged (the study's rule: 12 of the first 20
steps). Hits of ``warn`` categories are reported but never stop sampling; ``allow`` categories
are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from vgate.categories import CATEGORY_IDS
from vgate.core.findings import ALLOW, BLOCK
from vgate.errors import VgateError
from vgate.policy import Policy


@dataclass(frozen=True)
class GuardRule:
    """When to stop: the check steps, thresholds and the vote."""

    check_steps: tuple[int, ...]
    thresholds: np.ndarray  # float32 [5]
    required: int  # flagged check steps needed to stop (1 for decision: threshold)
    stopping: np.ndarray  # bool [5]: categories whose hits stop sampling (action block)
    reported: np.ndarray  # bool [5]: categories whose hits are reported (block or warn)

    @classmethod
    def from_policy(cls, policy: Policy, check_steps: Sequence[int] | None = None) -> GuardRule:
        gen = policy.generation
        actions = [policy.categories[c].action for c in CATEGORY_IDS]
        return cls(
            check_steps=tuple(check_steps or gen.check_steps),
            thresholds=np.array([gen.thresholds[c] for c in CATEGORY_IDS], dtype=np.float32),
            required=gen.vote_required if gen.decision == "vote" else 1,
            stopping=np.array([a == BLOCK for a in actions]),
            reported=np.array([a != ALLOW for a in actions]),
        )

    def check_schedule(self, num_inference_steps: int) -> None:
        """Fail when a check step lies beyond the sampling schedule."""
        beyond = [s for s in self.check_steps if s > num_inference_steps]
        if beyond:
            raise VgateError(
                f"check step(s) {', '.join(map(str, beyond))} beyond the schedule of "
                f"{num_inference_steps} sampling steps; lower generation.check_steps or raise "
                "--steps"
            )
        if self.required > len(self.check_steps):
            raise VgateError(
                f"the vote needs {self.required} flagged steps but only "
                f"{len(self.check_steps)} are checked"
            )

    def flags(self, scores: np.ndarray) -> tuple[bool, np.ndarray]:
        """(does this step count towards stopping, bool [5] reported hits) for one step."""
        over = np.asarray(scores, dtype=np.float32) >= self.thresholds
        return bool((over & self.stopping).any()), over & self.reported


@dataclass
class GuardState:
    """What the guard has seen during one generation."""

    rule: GuardRule
    flagged_steps: list[int] = field(default_factory=list)
    max_scores: np.ndarray = field(default_factory=lambda: np.zeros(len(CATEGORY_IDS), np.float32))
    hits: np.ndarray = field(default_factory=lambda: np.zeros(len(CATEGORY_IDS), bool))
    checked_steps: list[int] = field(default_factory=list)
    stopped_at: int | None = None

    def observe(self, step: int, scores: np.ndarray) -> bool:
        """Record the probe's scores at ``step``; True means stop sampling now."""
        stop_flag, reported = self.rule.flags(scores)
        self.checked_steps.append(step)
        self.max_scores = np.maximum(self.max_scores, np.asarray(scores, dtype=np.float32))
        self.hits |= reported
        if stop_flag:
            self.flagged_steps.append(step)
        if len(self.flagged_steps) >= self.rule.required and self.stopped_at is None:
            self.stopped_at = step
            return True
        return False

    @property
    def hit_categories(self) -> list[str]:
        return [c for c, hit in zip(CATEGORY_IDS, self.hits, strict=True) if hit]


def first_stop(rule: GuardRule, steps: Sequence[int], scores: np.ndarray) -> int | None:
    """Offline replay: the step at which guarded sampling would stop for one prompt.

    ``steps`` are the collected steps and ``scores`` their probe scores ``[S, 5]``; only the
    rule's check steps are used (each must have been collected). None: it would not stop.
    """
    index = {s: i for i, s in enumerate(steps)}
    missing = [s for s in rule.check_steps if s not in index]
    if missing:
        raise VgateError(
            f"check step(s) {', '.join(map(str, missing))} were not collected "
            f"(collected: {', '.join(map(str, steps))})"
        )
    state = GuardState(rule)
    for step in rule.check_steps:
        if state.observe(step, scores[index[step]]):
            return step
    return None
