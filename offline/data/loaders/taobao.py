"""Taobao ``UserBehavior.csv``: ``user_id,item_id,category_id,behavior_type,timestamp``, no header.

Behaviour types: ``pv`` (page view) is a click and a request; ``fav`` and ``cart`` are cart-level
intent; ``buy`` is a purchase. Only page views get impressions (with sampled non-clicks); every type
joins the behaviour sequence. The catalogue has no metadata beyond the category id, so an item's
category is ``Taobao>Category <id>``, from the item's first row.

The public log has 100M rows: it is read by Arrow one block at a time into the columnar log of
:mod:`.log` (:mod:`.batches`; a file Arrow's reader has doubts about is read line by line).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from offline.data.canonical import Dataset
from offline.data.loaders.assemble import (
    CART,
    CLICK,
    PURCHASE,
    ItemFields,
    LoaderConfig,
    assemble_dataset,
)
from offline.data.loaders.batches import (
    Unusual,
    csv_batches,
    integers,
    read_with_fallback,
    stripped,
)
from offline.data.loaders.log import Interactions
from offline.data.loaders.sources import MalformedDataError, numbered_lines

DEPARTMENT = "Taobao"
FILE = "UserBehavior.csv"
BEHAVIOUR_EVENTS = {"pv": CLICK, "fav": CART, "cart": CART, "buy": PURCHASE}
COLUMNS = ("user_id", "item_id", "category_id", "behavior_type", "timestamp")
_KINDS = pa.array(list(BEHAVIOUR_EVENTS))
_EVENTS = np.array(list(BEHAVIOUR_EVENTS.values()), dtype=np.int8)


def read_taobao(directory: Path, config: LoaderConfig) -> Interactions:
    """The log of ``directory/UserBehavior.csv`` (sampled as ``config`` says), each item tagged
    with its category id."""
    path, log = directory / FILE, config.log()
    read_with_fallback(
        path,
        log,
        lambda: _read_arrow(path, log, config.block_bytes),
        lambda: _read_lines(path, log),
    )
    return log


def _read_arrow(path: Path, log: Interactions, block_bytes: int) -> None:
    for batch in csv_batches(path, COLUMNS, block_bytes=block_bytes):
        user, item, category, behaviour, stamp = (stripped(column) for column in batch.columns)
        kinds = pc.index_in(behaviour, value_set=_KINDS)
        if kinds.null_count:
            raise Unusual("an unknown behavior_type")
        events = _EVENTS[kinds.to_numpy()]
        log.append(
            user,
            item,
            integers(stamp),
            np.ones(len(events), dtype=np.int8),
            events,
            events == CLICK,
            tags=category,
        )


def _read_lines(path: Path, log: Interactions) -> None:
    for number, line in numbered_lines(path):
        values = line.split(",")
        if len(values) != 5:
            raise MalformedDataError(
                path, number, f"expected 5 comma-separated fields, got {len(values)}"
            )
        user, item, category, behaviour, stamp = (v.strip() for v in values)
        event = BEHAVIOUR_EVENTS.get(behaviour)
        if event is None:
            raise MalformedDataError(
                path,
                number,
                f"unknown behavior_type {behaviour!r}; expected one of {sorted(BEHAVIOUR_EVENTS)}",
            )
        try:
            ts = int(stamp)
        except ValueError:
            raise MalformedDataError(
                path, number, f"timestamp {stamp!r} is not an integer"
            ) from None
        log.add(user, item, ts, label=1, event=event, request=event == CLICK, tag=category)


class _Categories:
    """Each item's metadata: the category of its first row."""

    def __init__(self, category_of: Callable[[str], str | None]) -> None:
        self._category_of = category_of

    def get(self, item: str, default: ItemFields, /) -> ItemFields:
        category = self._category_of(item)
        if category is None:
            return default
        return ItemFields(category_path=f"{DEPARTMENT}>Category {category}")


def load_taobao(directory: Path, config: LoaderConfig) -> Dataset:
    log = read_taobao(directory, config)
    meta = _Categories(log.item_tags())
    return assemble_dataset(log, meta, config, "taobao-userbehavior", DEPARTMENT)
