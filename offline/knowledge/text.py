"""The knowledge text that gets encoded into an item's semantic vector.

One ``field: values`` segment per known field, lower-cased, in a fixed order, so that two items
with the same knowledge get the same text and a bag-of-words encoder sees the field names as
context. Empty fields are left out rather than written as blanks, and so is a price band that the
catalogue does not state (confidence 0): a default band is no knowledge.
"""

from __future__ import annotations

from offline.knowledge.schema import ItemKnowledge

SEGMENT_SEPARATOR = " | "


def knowledge_text(record: ItemKnowledge) -> str:
    """The structured text of a record, e.g. ``"category: home kitchen cookware | brand: ..."``."""
    segments = (
        ("category", " ".join(record.category_path)),
        ("title", record.title),
        ("about", record.description),
        ("keywords", ", ".join(record.keywords)),
        ("brand", record.brand),
        ("material", record.material),
        ("style", record.style),
        ("price", record.price_band if record.confidence.get("price_band", 1.0) > 0 else ""),
        ("audience", record.audience),
        ("use", ", ".join(record.use_cases)),
        ("occasion", ", ".join(record.occasions)),
        ("season", ", ".join(record.seasons)),
        ("need", ", ".join(record.needs)),
        ("complements", ", ".join(record.complements)),
        ("substitutes", ", ".join(record.substitutes)),
        ("bought before", ", ".join(record.bought_before)),
        ("bought after", ", ".join(record.bought_after)),
    )
    return SEGMENT_SEPARATOR.join(f"{name}: {value}" for name, value in segments if value).lower()
