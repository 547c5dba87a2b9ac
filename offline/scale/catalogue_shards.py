"""The catalogue cut into shards of rows, and a shard back into a catalogue."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from typing import Any

import numpy as np
import pyarrow as pa

from offline.data.canonical import Catalogue
from offline.scale.shards import ranges, shard_row

_COLUMNS = tuple(column.name for column in fields(Catalogue))


def catalogue_rows(catalogue: Catalogue, size: int) -> Iterator[pa.Table]:
    """Shard rows of at most ``size`` items: every catalogue column, and ``start`` (the first
    item's catalogue row)."""
    for start, stop in ranges(len(catalogue), size):
        columns = {name: getattr(catalogue, name)[start:stop] for name in _COLUMNS}
        yield shard_row(columns, {"start": start})


def shard_catalogue(shard: dict[str, Any]) -> Catalogue:
    """The catalogue of a shard's items (its columns with the catalogue's dtypes)."""
    columns = {name: shard[name] for name in _COLUMNS}
    columns["price_bands"] = np.asarray(columns["price_bands"], np.int32)
    columns["prices"] = np.asarray(columns["prices"], np.float32)
    columns["launch_ts"] = np.asarray(columns["launch_ts"], np.int64)
    return Catalogue(**columns)
