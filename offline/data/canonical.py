"""Canonical catalogue and event data: what every loader produces and training reads.

Columnar NumPy arrays, saved as one ``.npz`` per table in a dataset directory (no pickles).
Rows of ``Impressions`` and ``Behaviours`` index ``Catalogue.item_ids`` and ``Dataset.user_ids``.
Behaviour event ids follow :mod:`service.contracts.features` (1 = click, 2 = cart, 3 = purchase).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt

Strings = npt.NDArray[np.str_]
Ints = npt.NDArray[np.int64]
Int32s = npt.NDArray[np.int32]


class _Table:
    """A dataclass of equally long columns, saved as one ``.npz`` array per field; its length is
    that of its first column."""

    def __len__(self) -> int:
        return len(getattr(self, fields(self)[0].name))  # type: ignore[arg-type]

    def save(self, path: Path) -> None:
        np.savez(path, **{f.name: getattr(self, f.name) for f in fields(self)})  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path) -> Self:
        """Columns added after a file was written (those with a default) load as their default."""
        with np.load(path, allow_pickle=False) as data:
            return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data.files})  # type: ignore[arg-type]


@dataclass(frozen=True)
class Catalogue(_Table):
    """Items and their metadata, one row per item."""

    item_ids: Strings  # "i<n>"
    category_paths: Strings  # "Home>Kitchen>Cookware"
    brands: Strings
    price_bands: Int32s  # 0 (budget) .. 4 (luxury)
    prices: npt.NDArray[np.float32]
    titles: Strings
    materials: Strings
    styles: Strings
    audiences: Strings
    launch_ts: Ints  # when the item became available (Unix seconds)
    #: Free-text keywords, comma-separated (e.g. user tags known before the split); "" if none.
    keywords: Strings = field(default_factory=lambda: np.array([], dtype=str))
    #: Free-text description (e.g. a release year, a product blurb); "" if none.
    descriptions: Strings = field(default_factory=lambda: np.array([], dtype=str))

    def __post_init__(self) -> None:
        # Catalogues written before the free-text columns existed (or formats without them)
        # get one empty string per item.
        for name in ("keywords", "descriptions"):
            if len(getattr(self, name)) != len(self.item_ids):
                if len(getattr(self, name)):
                    raise ValueError(f"{name} has {len(getattr(self, name))} rows, not {len(self)}")
                object.__setattr__(self, name, np.full(len(self.item_ids), "", dtype="<U1"))


@dataclass(frozen=True)
class Impressions(_Table):
    """Items shown to users, grouped by request (one page view), with the click label."""

    request_ids: Ints
    user_idx: Int32s
    item_idx: Int32s
    ts: Ints
    clicked: npt.NDArray[np.int8]


@dataclass(frozen=True)
class Behaviours(_Table):
    """Engagement events (the user's real behaviour sequence), sorted by user then time."""

    user_idx: Int32s
    item_idx: Int32s
    ts: Ints
    event: npt.NDArray[np.int8]


@dataclass(frozen=True)
class Dataset:
    """A catalogue, its users and their logs, with the time that splits training from evaluation."""

    catalogue: Catalogue
    user_ids: Strings  # "u<n>"
    impressions: Impressions
    behaviours: Behaviours
    split_ts: int
    meta: dict[str, Any]
    #: Start of the test period; requests in ``[split_ts, test_ts)`` are validation. ``None``:
    #: no validation period, everything from ``split_ts`` on is evaluation.
    test_ts: int | None = None

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.catalogue.save(directory / "catalogue.npz")
        np.save(directory / "user_ids.npy", self.user_ids)
        self.impressions.save(directory / "impressions.npz")
        self.behaviours.save(directory / "behaviours.npz")
        (directory / "dataset.json").write_text(
            json.dumps(
                {"split_ts": self.split_ts, "test_ts": self.test_ts, "meta": self.meta}, indent=2
            )
        )

    @classmethod
    def load(cls, directory: Path) -> Self:
        info = json.loads((directory / "dataset.json").read_text())
        return cls(
            catalogue=Catalogue.load(directory / "catalogue.npz"),
            user_ids=np.load(directory / "user_ids.npy", allow_pickle=False),
            impressions=Impressions.load(directory / "impressions.npz"),
            behaviours=Behaviours.load(directory / "behaviours.npz"),
            split_ts=int(info["split_ts"]),
            meta=info["meta"],
            test_ts=None if info.get("test_ts") is None else int(info["test_ts"]),
        )
