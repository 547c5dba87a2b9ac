"""The structured product knowledge recorded per item, whatever backend produced it.

The schema is versioned because knowledge is produced offline and stored: a later backend (a team
of LLM agents) must write records that the encoder and the ranker already understand, and a reader
must be able to tell an old record from a new one.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

KNOWLEDGE_SCHEMA_VERSION: Final = 1

#: Price band names, cheapest first; the catalogue's band id indexes them.
PriceBand = Literal["budget", "value", "mid-range", "premium", "luxury"]

#: Fields a backend may attach a confidence to.
KnowledgeField = Literal[
    "category_path", "brand", "material", "style", "price_band", "audience",
    "use_cases", "seasons", "complements", "substitutes",
]  # fmt: skip


class ItemKnowledge(BaseModel):
    """What is known about one item, in words a text encoder can read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = KNOWLEDGE_SCHEMA_VERSION
    item_id: str = Field(min_length=1)
    category_path: list[str] = Field(description="Department first, leaf kind last.")
    brand: str = ""
    material: str = ""
    style: str = ""
    price_band: PriceBand = Field(
        default="mid-range", description="Price position within the item's category."
    )
    audience: str = ""
    use_cases: list[str] = Field(default_factory=list, description="What people buy it for.")
    seasons: list[str] = Field(default_factory=list, description="When demand peaks.")
    complements: list[str] = Field(
        default_factory=list, description="Kinds of product bought together with it."
    )
    substitutes: list[str] = Field(
        default_factory=list, description="Kinds of product that can replace it."
    )
    confidence: dict[KnowledgeField, float] = Field(
        default_factory=dict, description="Per field, 0 (a guess) to 1 (read from metadata)."
    )
    backend: str = Field(description="Name and version of the backend that wrote the record.")
