"""The critic's rules: the catalogue wins for what it states, and every field gets a confidence.

The offline critic applies them alone; after an LLM critic they run again as a guard, so a model
that ignores the catalogue cannot overwrite a brand or a price band it was given.
"""

from __future__ import annotations

from typing import Any

from offline.knowledge.agents import (
    CriticAnswer,
    Findings,
)
from offline.knowledge.facts import ItemFacts
from offline.knowledge.schema import KNOWLEDGE_SCHEMA_VERSION, ItemKnowledge
from offline.knowledge.tables import (
    METADATA_CONFIDENCE,
    REASONED_FIELDS,
    category_knowledge,
    split_path,
)

#: Catalogue columns the critic treats as ground truth when they are filled in.
STATED_FIELDS = ("brand", "material", "style", "audience")
#: Confidence of an inferred claim the tables cannot confirm (e.g. a model's own answer).
UNCONFIRMED_CONFIDENCE = 0.5


def review(facts: ItemFacts, findings: Findings) -> CriticAnswer:
    """Merge the findings, ground them in the catalogue and attach a confidence per field."""
    attributes = findings.attributes
    path = list(attributes.category_path) if attributes else list(split_path(facts.category_path))
    merged: dict[str, Any] = {"category_path": path, "price_band": facts.price_band}
    conflicts: list[str] = []
    confidence: dict[str, float] = {
        "category_path": METADATA_CONFIDENCE,
        "price_band": METADATA_CONFIDENCE,
    }
    if attributes is not None and attributes.price_band != facts.price_band:
        conflicts.append(f"price_band: {attributes.price_band} -> {facts.price_band}")
    for name in STATED_FIELDS:
        stated, claimed = getattr(facts, name), getattr(attributes, name, "") if attributes else ""
        if stated and claimed and claimed.lower() != stated.lower():
            conflicts.append(f"{name}: {claimed} -> {stated}")
        merged[name] = stated or claimed
        confidence[name] = (
            METADATA_CONFIDENCE if stated else (UNCONFIRMED_CONFIDENCE if claimed else 0.0)
        )
    tables = category_knowledge(tuple(path))
    expected = tables.reasoned()
    for answer in (findings.scenarios, findings.relations):
        for name in REASONED_FIELDS:
            if answer is not None and name in type(answer).model_fields:
                merged[name] = list(getattr(answer, name))
    for name in REASONED_FIELDS:
        merged.setdefault(name, expected[name])
        confirmed = merged[name] == expected[name]
        confidence[name] = tables.confidence if confirmed else UNCONFIRMED_CONFIDENCE
    reasoning = (
        f"Checked the findings against the catalogue row; {len(conflicts)} conflict(s) resolved "
        f"in the catalogue's favour. Reasoned fields confirmed by the tables for "
        f"{' > '.join(path)} keep their confidence {tables.confidence}."
    )
    return CriticAnswer.model_validate(
        merged | {"reasoning": reasoning, "confidence": confidence, "conflicts": conflicts}
    )


def guard(answer: CriticAnswer, facts: ItemFacts) -> CriticAnswer:
    """An LLM critic's record with the catalogue's stated fields put back where it strayed."""
    fixes: dict[str, Any] = {}
    confidence = dict(answer.confidence)
    if answer.price_band != facts.price_band:
        fixes["price_band"] = facts.price_band
    confidence["price_band"] = METADATA_CONFIDENCE
    for name in STATED_FIELDS:
        stated = getattr(facts, name)
        if stated:
            confidence[name] = METADATA_CONFIDENCE  # type: ignore[index]
            if getattr(answer, name).lower() != stated.lower():
                fixes[name] = stated
    conflicts = [*answer.conflicts, *(f"{name}: kept the catalogue's value" for name in fixes)]
    return answer.model_copy(update=fixes | {"confidence": confidence, "conflicts": conflicts})


def stated_text(facts: ItemFacts) -> dict[str, Any]:
    """The catalogue's free text, copied into every record as stated (no agent rewrites it)."""
    return {
        "title": facts.title,
        "keywords": split_keywords(facts.keywords),
        "description": facts.description,
    }


#: The catalogue's free text, copied into records as stated; blank ones get no confidence.
FREE_TEXT_FIELDS = ("title", "keywords", "description")


def split_keywords(keywords: str) -> list[str]:
    return [word.strip() for word in keywords.split(",") if word.strip()]


def to_record(answer: CriticAnswer, facts: ItemFacts, backend: str) -> ItemKnowledge:
    """The record that gets encoded: the critic's fields, without its reasoning, and the
    catalogue's free text."""
    fields = answer.model_dump(exclude={"reasoning", "conflicts"})
    confidence = dict(fields.pop("confidence"))
    if not facts.priced:
        confidence["price_band"] = 0.0
    for name, value in stated_text(facts).items():
        if value:
            confidence[name] = METADATA_CONFIDENCE
    return ItemKnowledge(
        schema_version=KNOWLEDGE_SCHEMA_VERSION,
        item_id=facts.item_id,
        backend=backend,
        confidence=confidence,
        **fields,
        **stated_text(facts),
    )
