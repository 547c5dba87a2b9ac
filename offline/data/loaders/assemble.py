"""Turn a public log of user-item interactions into the canonical :class:`Dataset`.

Public logs hold engagements (ratings, page views, purchases), not what was shown and ignored.
The ranker needs impressions with non-clicks, so they are built here, the same way for every
format:

* **Clicks.** An explicit rating at or above ``click_threshold`` is a click; a lower rating is
  an observed non-click (shown, looked at, not liked). Implicit logs have clicks only.
* **Requests.** Each click (and each observed non-click) is one request at its timestamp. A click's
  request also gets ``negatives_per_positive`` sampled non-clicks: items the user never
  interacts with in the whole log (not before, not after: an item the user rates later is no
  honest non-click), drawn in proportion to their interactions *before* the request (popularity
  known at that time; an item nobody had touched yet cannot be drawn), seeded.
* **Behaviours.** Clicks, carts and purchases become the user's behaviour sequence (event ids of
  :mod:`service.contracts.features`).
* **Catalogue.** Items keep the metadata the format has; fields it lacks get fills (see
  :class:`ItemFields`). An item's launch time is its first interaction. Items never interacted with
  are left out: nothing could train or evaluate them.
* **IDs.** The original IDs are kept, prefixed: user ``u<original>``, item ``i<original>``, so they
  are valid service IDs and map back to the source by dropping one character.
* **Split.** ``split_ts`` is the ``split_quantile`` quantile of the interaction timestamps; with
  ``test_quantile``, ``test_ts`` is that quantile and the period between the two is validation
  (model selection, early stopping), the period after ``test_ts`` the test.
* **Item text.** Keywords with a timestamp (user tags) are kept only when written before
  ``split_ts``: a tag written in the evaluation period is part of its future.
* **Sample.** ``sample_users``, ``since`` and ``until`` keep part of the log, chosen while it is
  read (:mod:`.log`); every rule above then applies to that part as if it were the whole log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from offline.data.canonical import Behaviours, Catalogue, Dataset, Impressions
from offline.data.loaders.log import Interactions

USER_PREFIX, ITEM_PREFIX = "u", "i"
NO_BEHAVIOUR, CLICK, CART, PURCHASE = 0, 1, 2, 3
#: Price band of an item without a price: the middle one.
UNKNOWN_PRICE_BAND = 2
_REDRAW_ROUNDS = 8
#: The bounds of ``LoaderConfig.block_bytes``: Arrow needs a whole line in one block.
MIN_BLOCK_BYTES, MAX_BLOCK_BYTES = 1 << 10, 1 << 30


@dataclass(frozen=True)
class LoaderConfig:
    """How interactions become clicks, impressions and a split, and how much is read at once."""

    click_threshold: float = 4.0
    negatives_per_positive: int = 4
    split_quantile: float = 0.8
    seed: int = 0
    #: Start of the test period as a quantile of time (``None``: no validation period).
    test_quantile: float | None = None
    #: Keep only this many users, those with the smallest hashes of their ID keyed by ``seed``
    #: (the same users whatever the file order; others with another seed), chosen while the log
    #: streams, so a sampled load never holds the whole log. ``None``: every user.
    sample_users: int | None = None
    #: Keep only interactions with ``since <= timestamp < until`` (the loader's timestamps:
    #: Unix seconds, or line numbers for a RecBole file without times), applied while reading.
    since: int | None = None
    until: int | None = None
    #: The memory bound of reading: bytes of text parsed at once (Arrow's block size; the
    #: line-by-line readers append every ``block_bytes // 64`` lines). Reading holds about one
    #: block of text plus the log read so far, about 19 bytes an interaction (the distinct user
    #: and item IDs once each, and the sample's hash per user). Assembling the dataset, with its
    #: sampled negatives, is what needs most memory (see docs/SCALE.md).
    block_bytes: int = 16 << 20

    def __post_init__(self) -> None:
        if not 0 < self.split_quantile < 1:
            raise ValueError("split_quantile must lie in (0, 1)")
        if self.test_quantile is not None and not self.split_quantile < self.test_quantile < 1:
            raise ValueError("test_quantile must lie between split_quantile and 1")
        if self.negatives_per_positive < 0:
            raise ValueError("negatives_per_positive must be >= 0")
        if self.sample_users is not None and self.sample_users < 1:
            raise ValueError(f"sample_users must be >= 1, not {self.sample_users}")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError(f"since ({self.since}) must come before until ({self.until})")
        if not MIN_BLOCK_BYTES <= self.block_bytes <= MAX_BLOCK_BYTES:
            raise ValueError(
                f"block_bytes must lie in [{MIN_BLOCK_BYTES}, {MAX_BLOCK_BYTES}], "
                f"not {self.block_bytes}"
            )

    def log(self) -> Interactions:
        """An empty log that samples as this config says."""
        return Interactions(
            sample_users=self.sample_users,
            seed=self.seed,
            since=self.since,
            until=self.until,
            batch_rows=max(1, self.block_bytes // 64),
        )

    def sampling(self) -> dict[str, int | None] | None:
        """The sample's settings for a dataset's meta; None for the whole log."""
        if self.sample_users is None and self.since is None and self.until is None:
            return None
        return {"users": self.sample_users, "since": self.since, "until": self.until}


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
    description: str = ""
    #: Free-text keywords with the time each was written (user tags); see the module docstring.
    keywords: list[tuple[str, int]] = field(default_factory=list)


class ItemLookup(Protocol):
    """Catalogue metadata by original item ID (a ``dict`` is one)."""

    def get(self, item: str, default: ItemFields, /) -> ItemFields: ...


_NO_FIELDS = ItemFields()


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


def _keywords(fields: ItemFields, before_ts: int) -> str:
    """Distinct keywords written before ``before_ts``, most used first, comma-separated."""
    counts: dict[str, int] = {}
    for word, ts in fields.keywords:
        word = " ".join(word.lower().split())
        if word and ts < before_ts:
            counts[word] = counts.get(word, 0) + 1
    return ", ".join(sorted(counts, key=lambda w: (-counts[w], w)))


def _catalogue(
    item_ids: list[str],
    meta: ItemLookup,
    launch: npt.NDArray[np.int64],
    department: str,
    split_ts: int,
) -> Catalogue:
    """One column at a time, so a catalogue of millions of items holds no object per item."""
    paths, brands, prices, titles, materials = [], [], [], [], []
    styles, audiences, keywords, descriptions = [], [], [], []
    for item in item_ids:
        found = meta.get(item, _NO_FIELDS)
        paths.append(found.category_path or f"{department}>Other")
        brands.append(found.brand)
        prices.append(max(found.price, 0.0))
        titles.append(found.title or item)
        materials.append(found.material)
        styles.append(found.style)
        audiences.append(found.audience)
        keywords.append(_keywords(found, split_ts))
        descriptions.append(found.description)
    price_values = np.array(prices, dtype=np.float32)
    tops = np.array([path.split(">", 1)[0] for path in paths])
    return Catalogue(
        item_ids=np.array([ITEM_PREFIX + item for item in item_ids]),
        category_paths=np.array(paths),
        brands=np.array(brands),
        price_bands=_price_bands(price_values, tops),
        prices=price_values,
        titles=np.array(titles),
        materials=np.array(materials),
        styles=np.array(styles),
        audiences=np.array(audiences),
        launch_ts=launch,
        keywords=np.array(keywords or [""])[: len(item_ids)],
        descriptions=np.array(descriptions or [""])[: len(item_ids)],
    )


def sample_negatives(
    request_user: npt.NDArray[np.int64],
    request_ts: npt.NDArray[np.int64],
    log_user: npt.NDArray[np.int64],
    log_item: npt.NDArray[np.int64],
    log_ts: npt.NDArray[np.int64],
    k: int,
    rng: np.random.Generator,
    *,
    engaged: npt.NDArray[np.int64] | None = None,
    n_items: int | None = None,
) -> npt.NDArray[np.int64]:
    """``[requests, k]`` distinct items per request, -1 where none could be drawn.

    Each is drawn in proportion to its interactions strictly before the request time, the
    popularity known then: a uniform pick among the earlier interactions of the log, which are a
    prefix of the log sorted by time. Items the request's user interacts with at any time are
    redrawn, so no sampled non-click is an item that user rates. ``engaged`` (sorted keys
    ``user * n_items + item``) overrides which pairs count as interactions.
    """
    order = np.argsort(log_ts, kind="stable")
    items_by_time, sorted_ts = log_item[order], log_ts[order]
    earlier = np.searchsorted(sorted_ts, request_ts, side="left")
    n_items = n_items or int(log_item.max(initial=0)) + 1
    if engaged is None:
        engaged = np.unique(log_user * n_items + log_item)
    picks = np.full((len(request_ts), k), -1, dtype=np.int64)
    redo = np.broadcast_to((earlier > 0)[:, None], picks.shape).copy()
    for _ in range(_REDRAW_ROUNDS):
        rows = np.nonzero(redo)[0]
        if len(rows) == 0:
            break
        drawn = (rng.random(len(rows)) * earlier[rows]).astype(np.int64)
        picks[redo] = items_by_time[drawn]
        keys = request_user[:, None] * n_items + picks
        spot = np.minimum(np.searchsorted(engaged, keys), len(engaged) - 1)
        redo = (engaged[spot] == keys) & (picks >= 0)
        ranked = np.sort(picks, axis=1)
        duplicate_rows = ((ranked[:, 1:] == ranked[:, :-1]) & (ranked[:, 1:] >= 0)).any(axis=1)
        redo[duplicate_rows] |= _later_repeats(picks[duplicate_rows])
    picks[redo] = -1  # still colliding: too few items the user has not touched
    return picks


def _later_repeats(rows: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """True where a value already appeared earlier in its row."""
    repeats = np.zeros(rows.shape, dtype=bool)
    for column in range(1, rows.shape[1]):
        repeats[:, column] = (rows[:, :column] == rows[:, column : column + 1]).any(axis=1)
    return repeats


def assemble_dataset(
    log: Interactions,
    meta: ItemLookup,
    config: LoaderConfig,
    source: str,
    department: str = "Catalogue",
) -> Dataset:
    """The canonical dataset for ``log``; see the module docstring for every rule."""
    columns = log.finish()
    if len(columns.ts) == 0:
        raise ValueError(f"{source}: no interactions to build a dataset from")
    user_ids, user_idx = columns.user_ids, columns.users
    item_ids, item_idx = columns.item_ids, columns.items
    ts, labels, events = columns.ts, columns.labels, columns.events
    launch = np.full(len(item_ids), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(launch, item_idx, ts)

    rng = np.random.default_rng(config.seed)
    req = np.flatnonzero(columns.requests)
    k = config.negatives_per_positive
    negatives = sample_negatives(user_idx[req], ts[req], user_idx, item_idx, ts, k, rng)
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
    test_ts = (
        None
        if config.test_quantile is None
        else int(np.quantile(ts, config.test_quantile, method="lower"))
    )
    meta_info: dict[str, Any] = {
        "source": source,
        "id_mapping": {"users": f"{USER_PREFIX}<original>", "items": f"{ITEM_PREFIX}<original>"},
        "loader": {
            "click_threshold": config.click_threshold,
            "negatives_per_positive": k,
            "split_quantile": config.split_quantile,
            "test_quantile": config.test_quantile,
            "negatives": "never-engaged items, by popularity before the request",
            "seed": config.seed,
        },
        "interactions": len(ts),
        "items": len(item_ids),
        "users": len(user_ids),
        "impressions": len(impressions),
        "behaviours": len(behaviours),
    }
    if config.sampling() is not None:
        meta_info["loader"]["sample"] = config.sampling()
    return Dataset(
        catalogue=_catalogue(item_ids.tolist(), meta, launch, department, split_ts),
        user_ids=np.char.add(USER_PREFIX, user_ids.astype(str)),
        impressions=impressions,
        behaviours=behaviours,
        split_ts=split_ts,
        test_ts=test_ts,
        meta=meta_info,
    )
