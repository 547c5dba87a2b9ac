"""Item knowledge derived deterministically from catalogue metadata and the built-in world tables.

This is the backend used when no language model is configured, so the whole pipeline runs offline
and in tests. Its records follow the same schema an LLM backend writes; only the confidence differs.
Work is done once per distinct category path (a few hundred), then each item record is assembled
from plain lookups, so a million-item catalogue takes well under a minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from offline.data.canonical import Catalogue
from offline.knowledge.backend import KnowledgeBackend
from offline.knowledge.schema import KNOWLEDGE_SCHEMA_VERSION, ItemKnowledge
from offline.knowledge.world import (
    PATH_SEPARATOR,
    PRICE_BANDS,
    TAXONOMY,
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
_FREE_TEXT_FIELDS = ("brand", "material", "style", "audience")  # catalogue column = name + "s"
_RELATION_FIELDS = ("use_cases", "seasons", "complements", "substitutes")


@dataclass(frozen=True)
class _CategoryKnowledge:
    """What the world tables say about one category path."""

    path: list[str]
    use_cases: list[str]
    seasons: list[str]
    complements: list[str]
    substitutes: list[str]
    relation_confidence: float


def _category_knowledge(category_path: str) -> _CategoryKnowledge:
    parts = [part.strip() for part in category_path.split(PATH_SEPARATOR) if part.strip()]
    leaf = leaf_by_name().get(parts[-1]) if parts else None
    if leaf is not None:
        return _CategoryKnowledge(
            parts,
            list(leaf.sub.use_cases),
            list(leaf.sub.seasons),
            [name.lower() for name in complements_of(leaf.name)],
            [name.lower() for name in substitutes_of(leaf.name)],
            LEAF_CONFIDENCE,
        )
    subs = {sub.name: sub for top in TAXONOMY for sub in top.subcategories}
    sub = next((subs[part] for part in reversed(parts) if part in subs), None)
    if sub is not None:
        return _CategoryKnowledge(
            parts, list(sub.use_cases), list(sub.seasons), [], [], SUBCATEGORY_CONFIDENCE
        )
    return _CategoryKnowledge(parts, [], [], [], [], 0.0)


class OfflineKnowledgeBackend(KnowledgeBackend):
    """Describes items from their metadata plus the built-in world-knowledge tables."""

    @property
    def name(self) -> str:
        return "offline-tables"

    @property
    def version(self) -> str:
        return "1"

    def describe(self, catalogue: Catalogue) -> list[ItemKnowledge]:
        bands = np.asarray(catalogue.price_bands)
        if len(bands) and (bands.min() < 0 or bands.max() >= len(PRICE_BANDS)):
            raise ValueError(f"price bands must lie in 0..{len(PRICE_BANDS) - 1}")
        paths, path_index = np.unique(catalogue.category_paths, return_inverse=True)
        categories = [_category_knowledge(str(path)) for path in paths]
        # Which free-text metadata fields each item fills in, as a bit mask: a blank field gets
        # confidence 0, so one shared dict per (category path, mask) serves every item.
        filled = np.zeros(len(catalogue), dtype=np.int64)
        for bit, name in enumerate(_FREE_TEXT_FIELDS):
            filled |= (np.char.str_len(getattr(catalogue, name + "s")) > 0).astype(np.int64) << bit
        keys = path_index.reshape(-1) * (1 << len(_FREE_TEXT_FIELDS)) + filled
        shared: dict[int, dict[str, Any]] = {}
        for key in np.unique(keys).tolist():
            path, mask = divmod(key, 1 << len(_FREE_TEXT_FIELDS))
            shared[key] = self._shared_fields(categories[path], mask)
        # Records are built without re-validation: every value is a catalogue string or comes
        # from a checked table, and validating a million records would dominate the run time.
        # Items with the same key share its list and dict objects; records are frozen.
        return [
            ItemKnowledge.model_construct(**shared[key], **item)
            for key, item in zip(keys.tolist(), _metadata_rows(catalogue), strict=True)
        ]

    def _shared_fields(self, category: _CategoryKnowledge, filled: int) -> dict[str, Any]:
        relation = category.relation_confidence
        confidence = {"category_path": METADATA_CONFIDENCE, "price_band": METADATA_CONFIDENCE}
        for bit, name in enumerate(_FREE_TEXT_FIELDS):
            confidence[name] = METADATA_CONFIDENCE if filled >> bit & 1 else 0.0
        confidence |= dict.fromkeys(_RELATION_FIELDS, relation)
        return {
            "schema_version": KNOWLEDGE_SCHEMA_VERSION,
            "category_path": category.path,
            "use_cases": category.use_cases,
            "seasons": category.seasons,
            "complements": category.complements,
            "substitutes": category.substitutes,
            "confidence": confidence,
            "backend": self.identity,
        }


def _metadata_rows(catalogue: Catalogue) -> list[dict[str, Any]]:
    """The catalogue's per-item fields as plain Python values (one conversion per column)."""
    bands = [PRICE_BANDS[b] for b in np.asarray(catalogue.price_bands).tolist()]
    columns = {
        "item_id": catalogue.item_ids.tolist(),
        "brand": catalogue.brands.tolist(),
        "material": catalogue.materials.tolist(),
        "style": catalogue.styles.tolist(),
        "audience": catalogue.audiences.tolist(),
        "price_band": bands,
    }
    keys = list(columns)
    return [dict(zip(keys, values, strict=True)) for values in zip(*columns.values(), strict=True)]
