"""What the built-in tables say about a category path: the offline agents' common sense.

Looked up once per distinct path (a catalogue has a few hundred), then shared by every item on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from offline.knowledge.scenarios import needs_of, occasions_of
from offline.knowledge.world import (
    PATH_SEPARATOR,
    TAXONOMY,
    bought_after_of,
    bought_before_of,
    complements_of,
    leaf_by_name,
    substitutes_of,
)

#: Confidence of a field read straight from the catalogue.
METADATA_CONFIDENCE = 1.0
#: Confidence of a relation looked up for a known leaf kind: common sense, not measured.
LEAF_CONFIDENCE = 0.8
#: Confidence when only the subcategory is known: its use cases and seasons are a coarser guess.
SUBCATEGORY_CONFIDENCE = 0.5
#: Fields the scenario and relation agents reason about (the tables' confidence applies).
REASONED_FIELDS = (
    "use_cases", "occasions", "seasons", "needs",
    "complements", "substitutes", "bought_before", "bought_after",
)  # fmt: skip


@dataclass(frozen=True)
class CategoryKnowledge:
    """The tables' answer for one category path."""

    path: tuple[str, ...]
    use_cases: tuple[str, ...] = ()
    occasions: tuple[str, ...] = ()
    seasons: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    complements: tuple[str, ...] = ()
    substitutes: tuple[str, ...] = ()
    bought_before: tuple[str, ...] = ()
    bought_after: tuple[str, ...] = ()
    confidence: float = 0.0

    def reasoned(self) -> dict[str, list[str]]:
        return {name: list(getattr(self, name)) for name in REASONED_FIELDS}


def split_path(category_path: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in category_path.split(PATH_SEPARATOR) if part.strip())


def _lower(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name.lower() for name in names)


@cache
def category_knowledge(parts: tuple[str, ...]) -> CategoryKnowledge:
    """The leaf kind's knowledge, else its subcategory's (coarser), else nothing."""
    leaf = leaf_by_name().get(parts[-1]) if parts else None
    if leaf is not None:
        seasons = leaf.sub.seasons
        return CategoryKnowledge(
            parts,
            use_cases=leaf.sub.use_cases,
            occasions=tuple(occasions_of(seasons)),
            seasons=seasons,
            needs=tuple(needs_of(leaf.top.name)),
            complements=_lower(complements_of(leaf.name)),
            substitutes=_lower(substitutes_of(leaf.name)),
            bought_before=_lower(bought_before_of(leaf.name)),
            bought_after=_lower(bought_after_of(leaf.name)),
            confidence=LEAF_CONFIDENCE,
        )
    for top in TAXONOMY:
        for sub in top.subcategories:
            if sub.name in parts:
                return CategoryKnowledge(
                    parts,
                    use_cases=sub.use_cases,
                    occasions=tuple(occasions_of(sub.seasons)),
                    seasons=sub.seasons,
                    needs=tuple(needs_of(top.name)),
                    confidence=SUBCATEGORY_CONFIDENCE,
                )
    return CategoryKnowledge(parts)
