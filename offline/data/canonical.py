"""Canonical catalogue and event data: what every loader produces and training reads.

Columnar NumPy arrays, saved as one ``.npz`` per table in a dataset directory (no pickles).
Rows of ``Impressions`` and ``Behaviours`` index ``Catalogue.item_ids`` and ``Dataset.user_ids``.
Behaviour event ids follow :mod:`service.features` (1 = click, 2 = cart, 3 = purchase).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
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
        with np.load(path, allow_pickle=False) as data:
            return cls(**{f.name: data[f.name] for f in fields(cls)})  # type: ignore[arg-type]


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

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.catalogue.save(directory / "catalogue.npz")
        np.save(directory / "user_ids.npy", self.user_ids)
        self.impressions.save(directory / "impressions.npz")
        self.behaviours.save(directory / "behaviours.npz")
        (directory / "dataset.json").write_text(
            json.dumps({"split_ts": self.split_ts, "meta": self.meta}, indent=2)
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
        )
