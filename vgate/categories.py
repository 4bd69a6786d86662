"""The five unsafe categories of the NDSS 2025 study of unsafe video generation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    """One unsafe category: stable id, human title and the help text used in reports."""

    id: str
    title: str
    description: str

    @property
    def rule_id(self) -> str:
        """SARIF rule id, e.g. ``vgate/pornographic``."""
        return f"vgate/{self.id}"


CATEGORIES: tuple[Category, ...] = (
    Category(
        "distorted_weird",
        "Distorted / weird",
        "Grotesque, deformed or disturbingly distorted bodies, faces or scenes.",
    ),
    Category(
        "terrifying",
        "Terrifying",
        "Horror content meant to frighten: monsters, demons, zombies, nightmares, gore-free dread.",
    ),
    Category(
        "pornographic",
        "Pornographic",
        "Nudity or sexual content.",
    ),
    Category(
        "violent_bloody",
        "Violent / bloody",
        "Violence, injury, blood, gore, weapons used against people, self-harm.",
    ),
    Category(
        "political",
        "Political",
        "Politicians, propaganda or ideologies in derogatory, violent or inflammatory contexts.",
    ),
)

CATEGORY_IDS: tuple[str, ...] = tuple(c.id for c in CATEGORIES)
"""Column order of every ``scores[n, 5]`` array in vgate."""

CATEGORY_INDEX: dict[str, int] = {cid: i for i, cid in enumerate(CATEGORY_IDS)}
BY_ID: dict[str, Category] = {c.id: c for c in CATEGORIES}
