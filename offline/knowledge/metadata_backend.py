"""Item knowledge derived deterministically from catalogue metadata and the built-in world tables.

This backend is used when no language model is configured, so the whole pipeline runs offline
and in tests. It answers every agent role (:class:`~offline.knowledge.agents.AgentBackend`) from
the tables, and the team falls back to it for any role an LLM could not answer. Its records follow
the same schema an LLM team writes; only the confidences differ.

:meth:`OfflineKnowledgeBackend.describe` is the fast path for a whole catalogue and yields the
same records as running the team over it: work is done once per distinct category path (a few
hundred), then each item record is assembled from plain lookups, so a million-item catalogue
takes well under a minute.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

from offline.data.canonical import Catalogue
from offline.knowledge.agents import (
    AgentBackend,
    AgentReply,
    AgentRole,
    AttributeAnswer,
    Findings,
    RelationAnswer,
    ScenarioAnswer,
)
from offline.knowledge.backend import KnowledgeBackend
from offline.knowledge.critic import FREE_TEXT_FIELDS, STATED_FIELDS, review, split_keywords
from offline.knowledge.facts import ItemFacts
from offline.knowledge.schema import KNOWLEDGE_SCHEMA_VERSION, ItemKnowledge
from offline.knowledge.tables import (
    METADATA_CONFIDENCE,
    REASONED_FIELDS,
    CategoryKnowledge,
    category_knowledge,
    split_path,
)
from offline.knowledge.world import PRICE_BANDS

# Kept importable from here: the confidences are part of this backend's documented behaviour.
__all__ = ["METADATA_CONFIDENCE", "OfflineKnowledgeBackend"]

#: An answer whose fields the world tables reason out (see ``REASONED_FIELDS``).
Reasoned = TypeVar("Reasoned", ScenarioAnswer, RelationAnswer)


class OfflineKnowledgeBackend(KnowledgeBackend, AgentBackend):
    """Describes items from their metadata plus the built-in world-knowledge tables."""

    @property
    def name(self) -> str:
        return "offline-tables"

    @property
    def version(self) -> str:
        return "2"

    @property
    def agent_identity(self) -> str:
        return self.identity

    async def answer(self, role: AgentRole, facts: ItemFacts, findings: Findings) -> AgentReply:
        attributes = findings.attributes or self.attributes(facts)
        tables = category_knowledge(tuple(attributes.category_path))
        if role is AgentRole.ATTRIBUTES:
            return AgentReply(attributes)
        if role is AgentRole.SCENARIOS:
            return AgentReply(_looked_up(ScenarioAnswer, tables, "scenarios"))
        if role is AgentRole.RELATIONS:
            return AgentReply(_looked_up(RelationAnswer, tables, "relations"))
        return AgentReply(review(facts, findings))

    @staticmethod
    def attributes(facts: ItemFacts) -> AttributeAnswer:
        path = list(split_path(facts.category_path)) or ["unknown"]
        return AttributeAnswer(
            reasoning="Read the attributes from the catalogue row; the path is split on '>'.",
            category_path=path,
            price_band=facts.price_band,
            **{name: getattr(facts, name) for name in STATED_FIELDS},
        )

    def describe(self, catalogue: Catalogue) -> list[ItemKnowledge]:
        bands = np.asarray(catalogue.price_bands)
        if len(bands) and (bands.min() < 0 or bands.max() >= len(PRICE_BANDS)):
            raise ValueError(f"price bands must lie in 0..{len(PRICE_BANDS) - 1}")
        paths, path_index = np.unique(catalogue.category_paths, return_inverse=True)
        categories = [category_knowledge(split_path(str(path)) or ("unknown",)) for path in paths]
        # Which metadata fields each item fills in, as a bit mask: a blank field gets
        # confidence 0, so one shared dict per (category path, mask) serves every item.
        filled = np.zeros(len(catalogue), dtype=np.int64)
        for bit, column in enumerate(_FLAG_COLUMNS):
            values = getattr(catalogue, column)
            present = values > 0 if column == "prices" else np.char.str_len(values) > 0
            filled |= present.astype(np.int64) << bit
        keys = path_index.reshape(-1) * (1 << len(_FLAG_COLUMNS)) + filled
        shared: dict[int, dict[str, Any]] = {}
        for key in np.unique(keys).tolist():
            path, mask = divmod(key, 1 << len(_FLAG_COLUMNS))
            shared[key] = self._shared_fields(categories[path], mask)
        # Records are built without re-validation: every value is a catalogue string or comes
        # from a checked table, and validating a million records would dominate the run time.
        # Items with the same key share its list and dict objects; records are frozen.
        return [
            ItemKnowledge.model_construct(**shared[key], **item)
            for key, item in zip(keys.tolist(), _metadata_rows(catalogue), strict=True)
        ]

    def _shared_fields(self, category: CategoryKnowledge, filled: int) -> dict[str, Any]:
        confidence = {"category_path": METADATA_CONFIDENCE}
        for bit, name in enumerate(_FLAG_FIELDS):
            if filled >> bit & 1:
                confidence[name] = METADATA_CONFIDENCE
            elif name not in FREE_TEXT_FIELDS:  # free text left blank is simply not stated
                confidence[name] = 0.0
        confidence |= dict.fromkeys(REASONED_FIELDS, category.confidence)
        return {
            "schema_version": KNOWLEDGE_SCHEMA_VERSION,
            "category_path": list(category.path),
            **category.reasoned(),
            "confidence": confidence,
            "backend": self.identity,
        }


#: Catalogue columns whose presence sets a field's confidence, and the fields they fill.
_FLAG_COLUMNS = (
    *(name + "s" for name in STATED_FIELDS), "titles", "keywords", "descriptions", "prices",
)  # fmt: skip
_FLAG_FIELDS = (*STATED_FIELDS, "title", "keywords", "description", "price_band")


def _why(tables: CategoryKnowledge, what: str) -> str:
    if tables.confidence == 0:
        return f"The tables know nothing about {' > '.join(tables.path)}; no {what} inferred."
    return f"Looked up the {what} of {' > '.join(tables.path)} in the world tables."


def _looked_up(answer: type[Reasoned], tables: CategoryKnowledge, what: str) -> Reasoned:
    """The ``answer`` to a reasoned role, its fields copied from the category's tables."""
    fields = {
        name: list(getattr(tables, name)) for name in answer.model_fields if name in REASONED_FIELDS
    }
    return answer(reasoning=_why(tables, what), **fields)


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
        "title": catalogue.titles.tolist(),
        "keywords": [split_keywords(words) for words in catalogue.keywords.tolist()],
        "description": catalogue.descriptions.tolist(),
    }
    keys = list(columns)
    return [dict(zip(keys, values, strict=True)) for values in zip(*columns.values(), strict=True)]
