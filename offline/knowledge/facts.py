"""What the knowledge agents are told about an item: its catalogue row, as one validated object.

The content hash keys the knowledge cache. It covers every field an agent reads except the item
ID, so an item whose metadata changes is described again, and two items with identical metadata
share one set of answers.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict

from offline.data.canonical import Catalogue
from offline.knowledge.schema import PriceBand
from offline.knowledge.world import PRICE_BANDS


class ItemFacts(BaseModel):
    """One catalogue row in the words an agent reads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item_id: str
    title: str
    category_path: str
    brand: str
    price: float
    price_band: PriceBand
    material: str
    style: str
    audience: str
    keywords: str = ""
    description: str = ""
    #: Whether the catalogue states a price (the band of an item without one is a default).
    priced: bool = True

    def content_hash(self) -> str:
        content = self.model_dump(exclude={"item_id"})
        encoded = json.dumps(content, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(encoded).hexdigest()[:32]

    def prompt_view(self) -> str:
        """The facts as the JSON an agent's prompt quotes (the ID is left out: it means nothing)."""
        return json.dumps(self.model_dump(exclude={"item_id"}), ensure_ascii=False, indent=1)


def catalogue_facts(catalogue: Catalogue) -> list[ItemFacts]:
    """One :class:`ItemFacts` per catalogue row, in catalogue order."""
    bands = catalogue.price_bands.tolist()
    if bands and (min(bands) < 0 or max(bands) >= len(PRICE_BANDS)):
        raise ValueError(f"price bands must lie in 0..{len(PRICE_BANDS) - 1}")
    rows = zip(
        catalogue.item_ids.tolist(),
        catalogue.titles.tolist(),
        catalogue.category_paths.tolist(),
        catalogue.brands.tolist(),
        catalogue.prices.tolist(),
        bands,
        catalogue.materials.tolist(),
        catalogue.styles.tolist(),
        catalogue.audiences.tolist(),
        catalogue.keywords.tolist(),
        catalogue.descriptions.tolist(),
        strict=True,
    )
    return [
        ItemFacts(
            item_id=item_id,
            title=title,
            category_path=path,
            brand=brand,
            price=round(float(price), 2),
            price_band=PRICE_BANDS[band],  # type: ignore[arg-type]
            material=material,
            style=style,
            audience=audience,
            keywords=keywords,
            description=description,
            priced=price > 0,
        )
        for (
            item_id, title, path, brand, price, band, material, style, audience, keywords,
            description,
        ) in rows
    ]  # fmt: skip
