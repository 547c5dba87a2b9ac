"""Scenario tables: the occasions a season's demand comes from and the needs a department serves.

The scenario agent's offline implementation reads them, as the relation agent reads the complement
table in :mod:`offline.knowledge.world`: common sense written down once, so the pipeline can run
without a language model and still fill every field of the record.
"""

from __future__ import annotations

from typing import Final

#: Occasions behind a season's demand peak; "all year" has none.
SEASON_OCCASIONS: Final[dict[str, tuple[str, ...]]] = {
    "holidays": ("gift giving", "family gatherings"),
    "new year": ("new year resolutions",),
    "back to school": ("start of the school year",),
    "summer": ("summer holidays", "outdoor weekends"),
    "winter": ("cold weather", "winter holidays"),
    "spring": ("spring cleaning", "outdoor weekends"),
    "autumn": ("autumn trips",),
    "all year": (),
}

#: The needs a department's products serve.
DEPARTMENT_NEEDS: Final[dict[str, tuple[str, ...]]] = {
    "Home": ("comfortable living", "hosting"),
    "Electronics": ("entertainment", "staying connected", "productivity"),
    "Apparel": ("self-expression", "weather protection"),
    "Sports": ("fitness", "health"),
    "Outdoors": ("adventure", "time in nature"),
    "Beauty": ("self-care", "confidence"),
    "Toys": ("play", "child development"),
    "Books": ("knowledge", "entertainment"),
    "Grocery": ("nourishment", "treats"),
    "Pets": ("pet care", "companionship"),
}


def occasions_of(seasons: list[str] | tuple[str, ...]) -> list[str]:
    """Occasions of the given seasons, in order, without repeats."""
    found: dict[str, None] = {}
    for season in seasons:
        found.update(dict.fromkeys(SEASON_OCCASIONS.get(season, ())))
    return list(found)


def needs_of(department: str) -> list[str]:
    return list(DEPARTMENT_NEEDS.get(department, ()))
