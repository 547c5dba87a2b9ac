"""The offline knowledge step: world tables, records that validate, and the text to encode."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from offline.data.canonical import Catalogue, Dataset
from offline.data.synthetic import GroundTruth
from offline.knowledge import (
    KNOWLEDGE_SCHEMA_VERSION,
    ItemKnowledge,
    KnowledgeBackend,
    OfflineKnowledgeBackend,
    knowledge_text,
)
from offline.knowledge.world import complements_of, leaf_by_name, leaves, substitutes_of

Generated = tuple[Dataset, GroundTruth]


def _one_item(category_path: str, brand: str = "Acme") -> Catalogue:
    def column(value: Any, dtype: Any = None) -> np.ndarray:
        return np.array([value], dtype=dtype)

    return Catalogue(
        item_ids=column("i0"),
        category_paths=column(category_path),
        brands=column(brand),
        price_bands=column(4, np.int32),
        prices=column(9.5, np.float32),
        titles=column("A thing"),
        materials=column("steel"),
        styles=column("modern"),
        audiences=column("hosts"),
        launch_ts=column(0, np.int64),
    )


def test_world_tables_are_consistent() -> None:
    names = [leaf.name for leaf in leaves()]
    assert len(names) == len(set(names)) == 120
    for name in names:
        related = complements_of(name)
        assert related, f"{name} has no complements"
        assert all(name in complements_of(other) for other in related)
        assert not set(related) & set(substitutes_of(name))
        assert name not in related
    assert leaf_by_name()["Cookware"].path == "Home>Kitchen>Cookware"


def test_records_validate_and_follow_the_catalogue(tiny: Generated) -> None:
    catalogue = tiny[0].catalogue
    backend = OfflineKnowledgeBackend()
    records = backend.describe(catalogue)
    assert [r.item_id for r in records] == catalogue.item_ids.tolist()
    for record, path, band in zip(
        records[:50], catalogue.category_paths, catalogue.price_bands, strict=False
    ):
        checked = ItemKnowledge.model_validate(record.model_dump())
        assert checked == record
        assert record.schema_version == KNOWLEDGE_SCHEMA_VERSION
        assert ">".join(record.category_path) == path
        assert record.price_band == ("budget", "value", "mid-range", "premium", "luxury")[band]
        assert record.use_cases and record.complements and record.backend == backend.identity
        assert set(record.confidence.values()) == {1.0, 0.8}
    assert backend.describe(catalogue) == records


def test_text_names_the_category_and_its_complements(tiny: Generated) -> None:
    record = OfflineKnowledgeBackend().describe(tiny[0].catalogue)[0]
    text = knowledge_text(record)
    assert text.startswith("category: " + " ".join(record.category_path).lower())
    assert f"brand: {record.brand.lower()}" in text
    assert all(kind in text for kind in record.complements)
    assert text == text.lower()


def test_known_leaf_gets_world_knowledge() -> None:
    (record,) = OfflineKnowledgeBackend().describe(_one_item("Home>Kitchen>Cookware"))
    assert record.price_band == "luxury"
    assert "olive oil" in record.complements and "cooking" in record.use_cases
    assert record.confidence["complements"] == 0.8
    # Directed relations: the complement table lists what follows an anchor purchase.
    assert "olive oil" in record.bought_after and "camp stoves" in record.bought_before
    assert record.needs == ["comfortable living", "hosting"]


def test_unknown_leaf_falls_back_to_its_subcategory_then_to_nothing() -> None:
    (wok,) = OfflineKnowledgeBackend().describe(_one_item("Home>Kitchen>Woks", brand=""))
    assert wok.use_cases and not wok.complements
    assert wok.confidence["use_cases"] == 0.5 and wok.confidence["brand"] == 0.0
    assert "brand:" not in knowledge_text(wok)
    (odd,) = OfflineKnowledgeBackend().describe(_one_item("Hardware>Fasteners"))
    assert odd.category_path == ["Hardware", "Fasteners"] and not odd.use_cases
    assert odd.confidence["use_cases"] == 0.0


def test_out_of_range_price_band_is_refused() -> None:
    catalogue = _one_item("Home>Kitchen>Cookware")
    bad = replace(catalogue, price_bands=np.array([7], dtype=np.int32))
    with pytest.raises(ValueError, match="price bands"):
        OfflineKnowledgeBackend().describe(bad)


def test_schema_is_strict() -> None:
    valid = {"item_id": "i1", "category_path": ["A"], "backend": "x"}
    assert ItemKnowledge.model_validate(valid).price_band == "mid-range"
    with pytest.raises(ValidationError):
        ItemKnowledge.model_validate(valid | {"price_band": "cheap"})
    with pytest.raises(ValidationError):
        ItemKnowledge.model_validate(valid | {"colour": "red"})
    with pytest.raises(ValidationError):
        ItemKnowledge.model_validate(valid | {"schema_version": 4})
    old = ItemKnowledge.model_validate(valid | {"schema_version": 1})
    assert old.occasions == [] and old.bought_after == []
    with pytest.raises(TypeError):
        KnowledgeBackend()  # type: ignore[abstract]


def test_critic_keeps_the_catalogue_and_counts_conflicts() -> None:
    from offline.knowledge import AttributeAnswer, Findings, catalogue_facts
    from offline.knowledge.critic import review

    (facts,) = catalogue_facts(_one_item("Home>Kitchen>Cookware"))
    claimed = AttributeAnswer(
        reasoning="r",
        category_path=["Home", "Kitchen", "Cookware"],
        brand="Other",
        material="",
        style="modern",
        price_band="budget",
        audience="chefs",
    )
    answer = review(facts, Findings(attributes=claimed))
    assert answer.brand == "Acme" and answer.price_band == "luxury"
    assert answer.audience == "hosts" and answer.confidence["brand"] == 1.0
    assert len(answer.conflicts) == 3  # brand, price band, audience


def test_prompts_ask_for_reasoning_first_and_are_versioned() -> None:
    from offline.knowledge import PROMPTS, AgentRole, Findings, catalogue_facts
    from offline.knowledge.prompts import render_messages

    (facts,) = catalogue_facts(_one_item("Home>Kitchen>Cookware"))
    for role, prompt in PROMPTS.items():
        assert prompt.version and prompt.role is role
        assert next(iter(prompt.json_schema()["properties"])) == "reasoning"
        system, user = render_messages(prompt, facts, Findings())
        assert "reasoning" in system["content"] and "i0" not in user["content"]
        assert ("Findings so far" in user["content"]) == (role is not AgentRole.ATTRIBUTES)
