"""Amazon Reviews 2023 JSONL: review files joined with ``meta_*`` files on ``parent_asin``.

Every ``*.jsonl`` (or ``.jsonl.gz``) in the folder is a review file except ``meta_*`` ones. A review
(``user_id``, ``parent_asin``, ``rating``, ``timestamp`` in milliseconds) at or above the rating
threshold is a click followed by a purchase; a lower rating is an observed non-click. From the
metadata: title, ``categories`` (else ``main_category``) as the category path, ``store`` (else
``details.Brand``) as the brand, ``price``, and ``details.Material``.

Files are read by ``pyarrow.json`` one block at a time, only the fields above, typed
(:mod:`.batches`); a file Arrow's reader has doubts about (another JSON type than the release
uses, a broken line) is read line by line, which also names a malformed line. Metadata is kept for
reviewed items only. One leniency: Arrow reads two objects on one line as two rows, where the line
reader calls the line invalid JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from offline.data.canonical import Dataset
from offline.data.loaders.assemble import (
    NO_BEHAVIOUR,
    PURCHASE,
    ItemFields,
    LoaderConfig,
    assemble_dataset,
)
from offline.data.loaders.batches import Unusual, json_batches, read_with_fallback
from offline.data.loaders.log import Interactions
from offline.data.loaders.sources import MalformedDataError, numbered_lines

DEPARTMENT = "Amazon"
_REVIEW_KEYS = ("user_id", "parent_asin", "rating", "timestamp")
REVIEW_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("parent_asin", pa.string()),
        ("rating", pa.float64()),
        ("timestamp", pa.int64()),
    ]
)
META_SCHEMA = pa.schema(
    [
        ("parent_asin", pa.string()),
        ("title", pa.string()),
        ("main_category", pa.string()),
        ("categories", pa.list_(pa.string())),
        ("store", pa.string()),
        ("price", pa.float64()),
        ("details", pa.struct([("Brand", pa.string()), ("Material", pa.string())])),
    ]
)


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


def _arrow_reviews(path: Path, log: Interactions, config: LoaderConfig) -> None:
    for batch in json_batches(path, REVIEW_SCHEMA, block_bytes=config.block_bytes):
        user, item, rating, stamp = batch.columns
        if any(column.null_count for column in batch.columns) or any(
            pc.equal(ids, "").true_count for ids in (user, item)
        ):
            raise Unusual("a review without user_id, parent_asin, rating or timestamp")
        labels = (rating.to_numpy() >= config.click_threshold).astype(np.int8)
        events = np.where(labels > 0, PURCHASE, NO_BEHAVIOUR).astype(np.int8)
        ts = stamp.to_numpy() // 1000  # milliseconds in this release
        log.append(user, item, ts, labels, events, np.ones(len(labels), dtype=bool))


def _line_reviews(path: Path, log: Interactions, config: LoaderConfig) -> None:
    for number, row in _objects(path):
        missing = [key for key in _REVIEW_KEYS if row.get(key) in (None, "")]
        if missing:
            raise MalformedDataError(path, number, f"missing {', '.join(missing)}")
        try:
            label = int(float(row["rating"]) >= config.click_threshold)
            ts = int(row["timestamp"]) // 1000  # milliseconds in this release
        except (TypeError, ValueError):
            raise MalformedDataError(path, number, "rating and timestamp must be numbers") from None
        log.add(
            str(row["user_id"]),
            str(row["parent_asin"]),
            ts,
            label=label,
            event=PURCHASE if label else NO_BEHAVIOUR,
        )


def _arrow_meta(path: Path, logged: pa.Array, block_bytes: int) -> dict[str, ItemFields]:
    """Metadata of the reviewed items (the others are never looked up)."""
    meta = {}
    for batch in json_batches(path, META_SCHEMA, block_bytes=block_bytes):
        asins = batch.column(0)
        if asins.null_count or pc.equal(asins, "").true_count:
            raise Unusual("an item without parent_asin")
        for row in batch.filter(pc.is_in(asins, value_set=logged)).to_pylist():
            meta[row["parent_asin"]] = _item_fields(row)
    return meta


def _line_meta(path: Path) -> dict[str, ItemFields]:
    meta = {}
    for number, row in _objects(path):
        if not row.get("parent_asin"):
            raise MalformedDataError(path, number, "missing parent_asin")
        meta[str(row["parent_asin"])] = _item_fields(row)
    return meta


def load_amazon(directory: Path, config: LoaderConfig) -> Dataset:
    files = sorted(p for p in directory.iterdir() if ".jsonl" in p.name)
    reviews = [p for p in files if not p.name.startswith("meta_")]
    if not reviews:
        raise MalformedDataError(directory, None, "no review *.jsonl file")
    log = config.log()
    for path in reviews:
        arrow, lines = partial(_arrow_reviews, path), partial(_line_reviews, path)
        read_with_fallback(path, log, partial(arrow, log, config), partial(lines, log, config))
    logged = log.item_strings()
    meta: dict[str, ItemFields] = {}
    for path in (p for p in files if p.name.startswith("meta_")):
        arrow_meta = partial(_arrow_meta, path, logged, config.block_bytes)
        meta.update(read_with_fallback(path, None, arrow_meta, partial(_line_meta, path)))
    return assemble_dataset(log, meta, config, "amazon-reviews-2023", DEPARTMENT)
