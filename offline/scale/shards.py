"""Shards as Ray Data rows: one row holds a whole shard, its columns as Arrow lists.

A stage maps a callable over the rows with ``batch_size=1``, so one call sees exactly one shard as
the driver cut it, whatever blocks Ray Data forms: generation needs its shards to be whole
generation batches, and a GPU stage needs an explicit batch size. Each shard carries its own data
(a slice of the catalogue, its users' sequences), so a worker fetches only what it works on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import ray.data

Ints = npt.NDArray[np.int64]
Scalar = int | float | str


def ranges(n: int, size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges of at most ``size`` covering ``0..n``."""
    if size < 1:
        raise ValueError("size must be positive")
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def shard_row(
    arrays: Mapping[str, npt.NDArray[Any]], scalars: Mapping[str, Scalar] | None = None
) -> pa.Table:
    """One row: each 1-D array as a list column, each scalar as a plain column."""
    columns: dict[str, pa.Array] = {}
    for name, values in arrays.items():
        flat = pa.array(np.ascontiguousarray(values).reshape(-1))
        columns[name] = pa.ListArray.from_arrays(pa.array([0, len(flat)], pa.int32()), flat)
    for name, value in (scalars or {}).items():
        columns[name] = pa.array([value])
    return pa.table(columns)


def shard_arrays(batch: pa.Table, row: int) -> dict[str, Any]:
    """The arrays (NumPy; strings as ``str_``) and scalars of row ``row`` of a batch."""
    found: dict[str, Any] = {}
    for name in batch.column_names:
        value = batch.column(name)[row]
        if isinstance(value, pa.ListScalar):
            values = value.values
            array = values.to_numpy(zero_copy_only=False)
            found[name] = array.astype(np.str_) if pa.types.is_string(values.type) else array
        else:
            found[name] = value.as_py()
    return found


def shard_dataset(rows: Iterable[pa.Table]) -> ray.data.Dataset:
    """The shards as a dataset, one block per shard."""
    return ray.data.from_arrow(list(rows))


def concatenated(parts: list[dict[str, npt.NDArray[Any]]]) -> dict[str, npt.NDArray[Any]]:
    """Per-row outputs of one call's shards, as one batch."""
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def collected(dataset: ray.data.Dataset) -> Iterator[dict[str, npt.NDArray[Any]]]:
    """The stage's output batches in the driver, in no particular order (rows carry their
    position)."""
    yield from dataset.iter_batches(batch_size=None, batch_format="numpy")


def jagged_take(offsets: Ints, rows: Ints) -> tuple[Ints, Ints]:
    """For jagged data (row ``r`` is ``values[offsets[r]:offsets[r + 1]]``): the offsets of
    ``rows`` taken in that order, and the index of their values."""
    rows = np.asarray(rows, np.int64)
    starts = offsets[rows]
    lengths = offsets[rows + 1] - starts
    taken = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    index = np.repeat(starts - taken[:-1], lengths) + np.arange(taken[-1], dtype=np.int64)
    return taken, index
