"""Turn a public log of user-item interactions into the canonical :class:`Dataset`.

Public logs hold engagements (ratings, page views, purchases), not what was shown and ignored.
The ranker needs impressions with non-clicks, so they are built here, the same way for every
format:

* **Clicks.** An explicit rating at or above ``click_threshold`` is a click; a lower rating is
  an observed non-click (shown, looked at, not liked). Implicit logs have clicks only.
* **Requests.** Each click (and each observed non-click) is one request at its timestamp. A click's
  request also gets ``negatives_per_positive`` sampled non-clicks: items already live at that
  time (first seen at or before it), drawn in proportion to their number of interactions, seeded.
* **Behaviours.** Clicks, carts and purchases become the user's behaviour sequence (event ids of
  :mod:`service.features`).
* **Catalogue.** Items keep the metadata the format has; fields it lacks get fills (see
  :class:`ItemFields`). An item's launch time is its first interaction. Items never interacted with
  are left out: nothing could train or evaluate them.
* **IDs.** The original IDs are kept, prefixed: user ``u<original>``, item ``i<original>``, so they
  are valid service IDs and map back to the source by dropping one character.
* **Split.** ``split_ts`` is the ``split_quantile`` quantile of the interaction timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from offline.data.canonical import Behaviours, Catalogue, Dataset, Impressions

USER_PREFIX, ITEM_PREFIX = "u", "i"
NO_BEHAVIOUR, CLICK, CART, PURCHASE = 0, 1, 2, 3
#: Price band of an item without a price: the middle one.
UNKNOWN_PRICE_BAND = 2
_REDRAW_ROUNDS = 8


@dataclass(frozen=True)
class LoaderConfig:
    """How interactions become clicks, impressions and a split."""

    click_threshold: float = 4.0
    negatives_per_positive: int = 4
    split_quantile: float = 0.8
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.split_quantile < 1:
            raise ValueError("split_quantile must lie in (0, 1)")
        if self.negatives_per_positive < 0:
            raise ValueError("negatives_per_positive must be >= 0")


@dataclass
class ItemFields:
    """Catalogue metadata of one item; blanks are filled when the dataset is assembled."""

    title: str = ""
    category_path: str = ""
    brand: str = ""
    price: float = 0.0
    material: str = ""
    style: str = ""
    audience: str = ""


@dataclass
class Interactions:
    """The log as read, one entry per interaction, in any order."""

    users: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)  # 1 click, 0 observed non-click
    events: list[int] = field(default_factory=list)  # behaviour event id, 0 for none
    requests: list[bool] = field(default_factory=list)  # whether it is a page view

    def add(
        self, user: str, item: str, ts: int, *, label: int, event: int, request: bool = True
    ) -> None:
        self.users.append(user)
        self.items.append(item)
        self.ts.append(ts)
        self.labels.append(label)
        self.events.append(event)
        self.requests.append(request)

    def __len__(self) -> int:
        return len(self.users)


def _price_bands(
    prices: npt.NDArray[np.float32], tops: npt.NDArray[np.str_]
) -> npt.NDArray[np.int32]:
    """Quintile of the price within the item's department; the middle band when unknown."""
    bands = np.full(len(prices), UNKNOWN_PRICE_BAND, dtype=np.int32)
    for top in np.unique(tops):
        rows = np.flatnonzero((tops == top) & (prices > 0))
        if len(rows) >= 5:
            ranks = np.argsort(np.argsort(prices[rows], kind="stable"), kind="stable")
            bands[rows] = (ranks * 5 // len(rows)).astype(np.int32)
    return bands


def _catalogue(
    item_ids: list[str], meta: dict[str, ItemFields], launch: npt.NDArray[np.int64], department: str
) -> Catalogue:
    fields = [meta.get(item, ItemFields()) for item in item_ids]
    paths = np.array([f.category_path or f"{department}>Other" for f in fields])
    prices = np.array([max(f.price, 0.0) for f in fields], dtype=np.float32)
    tops = np.array([path.split(">", 1)[0] for path in paths.tolist()])
    return Catalogue(
        item_ids=np.array([ITEM_PREFIX + item for item in item_ids]),
        category_paths=paths,
        brands=np.array([f.brand for f in fields]),
        price_bands=_price_bands(prices, tops),
        prices=prices,
        titles=np.array([f.title or item for f, item in zip(fields, item_ids, strict=True)]),
        materials=np.array([f.material for f in fields]),
        styles=np.array([f.style for f in fields]),
        audiences=np.array([f.audience for f in fields]),
        launch_ts=launch,
    )


def sample_negatives(
    positive_item: npt.NDArray[np.int64],
    ts: npt.NDArray[np.int64],
    launch: npt.NDArray[np.int64],
    weight: npt.NDArray[np.float64],
    k: int,
    rng: np.random.Generator,
) -> npt.NDArray[np.int64]:
    """``[requests, k]`` items live at each time, weighted; -1 where none could be drawn."""
    order = np.argsort(launch, kind="stable")
    cdf = np.cumsum(weight[order])
    live = np.searchsorted(launch[order], ts, side="right")  # >= 1: the positive is live
    picks = np.full((len(ts), k), -1, dtype=np.int64)
    redo = np.ones(picks.shape, dtype=bool)
    for _ in range(_REDRAW_ROUNDS):
        rows = np.nonzero(redo)[0]
        if len(rows) == 0:
            break
        u = rng.random(len(rows)) * cdf[live[rows] - 1]
        picks[redo] = order[np.minimum(np.searchsorted(cdf, u, side="right"), len(order) - 1)]
        redo = picks == positive_item[:, None]
        ranked = np.sort(picks, axis=1)
        duplicate_rows = (ranked[:, 1:] == ranked[:, :-1]).any(axis=1)
        redo[duplicate_rows] |= _later_repeats(picks[duplicate_rows])
    picks[redo] = -1  # still colliding: fewer live items than the page needs
    return picks


def _later_repeats(rows: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """True where a value already appeared earlier in its row."""
    repeats = np.zeros(rows.shape, dtype=bool)
    for column in range(1, rows.shape[1]):
        repeats[:, column] = (rows[:, :column] == rows[:, column : column + 1]).any(axis=1)
    return repeats


def assemble_dataset(
    log: Interactions,
    meta: dict[str, ItemFields],
    config: LoaderConfig,
    source: str,
    department: str = "Catalogue",
) -> Dataset:
    """The canonical dataset for ``log``; see the module docstring for every rule."""
    if len(log) == 0:
        raise ValueError(f"{source}: no interactions to build a dataset from")
    user_ids, user_idx = np.unique(np.array(log.users), return_inverse=True)
    item_ids, item_idx = np.unique(np.array(log.items), return_inverse=True)
    ts = np.asarray(log.ts, dtype=np.int64)
    labels, events = np.asarray(log.labels, np.int8), np.asarray(log.events, np.int8)
    launch = np.full(len(item_ids), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(launch, item_idx, ts)
    weight = np.bincount(item_idx, minlength=len(item_ids)).astype(np.float64)

    rng = np.random.default_rng(config.seed)
    req = np.flatnonzero(np.asarray(log.requests, dtype=bool))
    k = config.negatives_per_positive
    negatives = sample_negatives(item_idx[req], ts[req], launch, weight, k, rng)
    negatives[labels[req] == 0] = -1  # observed non-clicks stand alone
    slots = np.hstack([item_idx[req][:, None], negatives])
    shown = slots >= 0
    request_of_slot = np.broadcast_to(np.arange(len(req))[:, None], slots.shape)[shown]
    clicked = np.zeros(slots.shape, dtype=np.int8)
    clicked[:, 0] = labels[req]
    impressions = Impressions(
        request_ids=request_of_slot.astype(np.int64),
        user_idx=user_idx[req][request_of_slot].astype(np.int32),
        item_idx=slots[shown].astype(np.int32),
        ts=ts[req][request_of_slot],
        clicked=clicked[shown],
    )
    engaged = np.flatnonzero((events > NO_BEHAVIOUR) & (labels > 0))
    order = engaged[np.lexsort((ts[engaged], user_idx[engaged]))]
    behaviours = Behaviours(
        user_idx=user_idx[order].astype(np.int32),
        item_idx=item_idx[order].astype(np.int32),
        ts=ts[order],
        event=events[order],
    )
    split_ts = int(np.quantile(ts, config.split_quantile, method="lower"))
    meta_info: dict[str, Any] = {
        "source": source,
        "id_mapping": {"users": f"{USER_PREFIX}<original>", "items": f"{ITEM_PREFIX}<original>"},
        "loader": {
            "click_threshold": config.click_threshold,
            "negatives_per_positive": k,
            "split_quantile": config.split_quantile,
            "seed": config.seed,
        },
        "interactions": len(log),
        "items": len(item_ids),
        "users": len(user_ids),
        "impressions": len(impressions),
        "behaviours": len(behaviours),
    }
    return Dataset(
        catalogue=_catalogue(item_ids.tolist(), meta, launch, department),
        user_ids=np.char.add(USER_PREFIX, user_ids.astype(str)),
        impressions=impressions,
        behaviours=behaviours,
        split_ts=split_ts,
        meta=meta_info,
    )
