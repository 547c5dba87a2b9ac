"""Amazon Reviews 2023 JSONL: review files joined with ``meta_*`` files on ``parent_asin``.

Every ``*.jsonl`` (or ``.jsonl.gz``) in the folder is a review file except ``meta_*`` ones. A review
(``user_id``, ``parent_asin``, ``rating``, ``timestamp`` in milliseconds) at or above the rating
threshold is a click followed by a purchase; a lower rating is an observed non-click. From the
metadata: title, ``categories`` (else ``main_category``) as the category path, ``store`` (else
``details.Brand``) as the brand, ``price``, and ``details.Material``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from offline.data.canonical import Dataset
from offline.data.loaders.assemble import (
    NO_BEHAVIOUR,
    PURCHASE,
    Interactions,
    ItemFields,
    LoaderConfig,
    assemble_dataset,
)
from offline.data.loaders.sources import MalformedDataError, numbered_lines

DEPARTMENT = "Amazon"
_REVIEW_KEYS = ("user_id", "parent_asin", "rating", "timestamp")


def _objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in numbered_lines(path):
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise MalformedDataError(path, number, f"invalid JSON: {error.msg}") from None
        if not isinstance(value, dict):
            raise MalformedDataError(path, number, "expected a JSON object")
        yield number, value


def _price(value: Any) -> float:
    try:
        return float(str(value).replace("$", "").replace(",", "")) if value else 0.0
    except ValueError:
        return 0.0


def _item_fields(row: dict[str, Any]) -> ItemFields:
    categories = [str(c).strip() for c in row.get("categories") or [] if str(c).strip()]
    main = str(row.get("main_category") or "").strip()
    path = categories or ([main] if main else [])
    found = row.get("details")
    details: dict[str, Any] = found if isinstance(found, dict) else {}
    return ItemFields(
        title=str(row.get("title") or "").strip(),
        category_path=">".join(path),
        brand=str(row.get("store") or details.get("Brand") or "").strip(),
        price=_price(row.get("price")),
        material=str(details.get("Material") or "").strip(),
    )


def load_amazon(directory: Path, config: LoaderConfig) -> Dataset:
    files = sorted(p for p in directory.iterdir() if ".jsonl" in p.name)
    reviews = [p for p in files if not p.name.startswith("meta_")]
    if not reviews:
        raise MalformedDataError(directory, None, "no review *.jsonl file")
    log = Interactions()
    for path in reviews:
        for number, row in _objects(path):
            missing = [key for key in _REVIEW_KEYS if row.get(key) in (None, "")]
            if missing:
                raise MalformedDataError(path, number, f"missing {', '.join(missing)}")
            try:
                label = int(float(row["rating"]) >= config.click_threshold)
                ts = int(row["timestamp"]) // 1000  # milliseconds in this release
            except (TypeError, ValueError):
                raise MalformedDataError(
                    path, number, "rating and timestamp must be numbers"
                ) from None
            log.add(
                str(row["user_id"]),
                str(row["parent_asin"]),
                ts,
                label=label,
                event=PURCHASE if label else NO_BEHAVIOUR,
            )
    meta: dict[str, ItemFields] = {}
    for path in (p for p in files if p.name.startswith("meta_")):
        for number, row in _objects(path):
            if not row.get("parent_asin"):
                raise MalformedDataError(path, number, "missing parent_asin")
            meta[str(row["parent_asin"])] = _item_fields(row)
    return assemble_dataset(log, meta, config, "amazon-reviews-2023", DEPARTMENT)
