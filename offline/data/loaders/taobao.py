"""Taobao ``UserBehavior.csv``: ``user_id,item_id,category_id,behavior_type,timestamp``, no header.

Behaviour types: ``pv`` (page view) is a click and a request; ``fav`` and ``cart`` are cart-level
intent; ``buy`` is a purchase. Only page views get impressions (with sampled non-clicks); every type
joins the behaviour sequence. The catalogue has no metadata beyond the category id, so an item's
category is ``Taobao>Category <id>``.
"""

from __future__ import annotations

from pathlib import Path

from offline.data.canonical import Dataset
from offline.data.loaders.assemble import (
    CART,
    CLICK,
    PURCHASE,
    Interactions,
    ItemFields,
    LoaderConfig,
    assemble_dataset,
)
from offline.data.loaders.sources import MalformedDataError, numbered_lines

DEPARTMENT = "Taobao"
BEHAVIOUR_EVENTS = {"pv": CLICK, "fav": CART, "cart": CART, "buy": PURCHASE}


def load_taobao(directory: Path, config: LoaderConfig) -> Dataset:
    path = directory / "UserBehavior.csv"
    log = Interactions()
    meta: dict[str, ItemFields] = {}
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
        log.add(user, item, ts, label=1, event=event, request=event == CLICK)
        if item not in meta:
            meta[item] = ItemFields(category_path=f"{DEPARTMENT}>Category {category}")
    return assemble_dataset(log, meta, config, "taobao-userbehavior", DEPARTMENT)
