"""The structured product knowledge recorded per item, whatever backend produced it.

The schema is versioned because knowledge is produced offline and stored: every backend (the
deterministic tables, a team of LLM agents) must write records that the encoder and the ranker
already understand, and a reader must be able to tell an old record from a new one.

Version 2 added the scenario fields (``occasions``, ``needs``) and the directed relation fields
(``bought_before``, ``bought_after``). Version 3 added what the catalogue states in free text: the
``title``, ``keywords`` (e.g. user tags) and a ``description``. Older records still validate: the
new fields default to empty, which the text encoder leaves out.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

KNOWLEDGE_SCHEMA_VERSION: Final = 3

#: Price band names, cheapest first; the catalogue's band id indexes them.
PriceBand = Literal["budget", "value", "mid-range", "premium", "luxury"]

#: Fields a backend may attach a confidence to.
KnowledgeField = Literal[
    "category_path", "title", "keywords", "description",
    "brand", "material", "style", "price_band", "audience",
    "use_cases", "occasions", "seasons", "needs", "complements", "substitutes",
    "bought_before", "bought_after",
]  # fmt: skip


class ItemKnowledge(BaseModel):
    """What is known about one item, in words a text encoder can read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1, 2, 3] = KNOWLEDGE_SCHEMA_VERSION
    item_id: str = Field(min_length=1)
    category_path: list[str] = Field(description="Department first, leaf kind last.")
    title: str = ""
    keywords: list[str] = Field(default_factory=list, description="Catalogue keywords, tags.")
    description: str = Field(default="", description="The catalogue's free-text description.")
    brand: str = ""
    material: str = ""
    style: str = ""
    price_band: PriceBand = Field(
        default="mid-range", description="Price position within the item's category."
    )
    audience: str = ""
    use_cases: list[str] = Field(default_factory=list, description="What people buy it for.")
    occasions: list[str] = Field(default_factory=list, description="Events it is bought for.")
    seasons: list[str] = Field(default_factory=list, description="When demand peaks.")
    needs: list[str] = Field(default_factory=list, description="The needs the item serves.")
    complements: list[str] = Field(
        default_factory=list, description="Kinds of product bought together with it."
    )
    substitutes: list[str] = Field(
        default_factory=list, description="Kinds of product that can replace it."
    )
    bought_before: list[str] = Field(
        default_factory=list, description="Kinds of product people own or buy before this one."
    )
    bought_after: list[str] = Field(
        default_factory=list, description="Kinds of product people buy once they have this one."
    )
    confidence: dict[KnowledgeField, float] = Field(
        default_factory=dict, description="Per field, 0 (a guess) to 1 (read from metadata)."
    )
    backend: str = Field(description="Name and version of the backend that wrote the record.")
