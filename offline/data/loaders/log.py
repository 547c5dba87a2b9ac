"""The interaction log as read: columnar, IDs dictionary-encoded, sampled while it streams.

A Taobao-size log (100M rows) cannot be Python lists of strings. Rows arrive in batches (one
Arrow block, or a few thousand lines of the line-by-line readers) and are kept as NumPy columns:
an int32 code for the user and for the item, int64 time, int8 label and event, a bool request
flag, 19 bytes a row. Each distinct ID string is stored once, in an :class:`IdTable`.

Sampling happens here, batch by batch, so a sampled load never holds the whole log:

* ``since``/``until`` keep rows with ``since <= ts < until``;
* ``sample_users`` keeps the users with the smallest keyed hashes (BLAKE2b of the ID, keyed by
  the seed): the same users whatever the file order or batch size, different ones per seed. A
  user drawn early can be pushed out by one with a smaller hash met later; their rows are then
  dropped (from time to time while reading, and for good in :meth:`Interactions.finish`).

:meth:`Interactions.finish` gives the columns :func:`~.assemble.assemble_dataset` works on, with
the codes renumbered in the sorted order of the ID strings, as ``np.unique`` numbers them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

Codes = npt.NDArray[np.int32]
_COLUMNS = ("users", "items", "ts", "labels", "events", "requests")
_DTYPES = {
    "users": np.int32,
    "items": np.int32,
    "ts": np.int64,
    "labels": np.int8,
    "events": np.int8,
    "requests": np.bool_,
}


class IdTable:
    """Distinct strings in the order first met; a row holds its string's position (its code)."""

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._codes)

    def encode(self, values: pa.Array) -> tuple[Codes, Codes, list[str]]:
        """Codes of ``values`` (new strings are added); the first row of each distinct value
        that was new, and the new strings in code order."""
        encoded = values.dictionary_encode()
        local = encoded.dictionary.to_pylist()
        table, before = self._codes, len(self._codes)
        codes = np.fromiter(
            (table.setdefault(value, len(table)) for value in local), np.int32, len(local)
        )
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        fresh = np.flatnonzero(codes >= before)
        # Dictionary entries come in the order first met: entry j first appears where the
        # running maximum of the indices first reaches j.
        running = np.maximum.accumulate(indices) if len(indices) else indices
        first_rows = (
            np.flatnonzero(np.r_[True, running[1:] > running[:-1]]) if len(indices) else indices
        )
        return codes[indices], first_rows[fresh].astype(np.int32), [local[j] for j in fresh]

    def code(self, value: str) -> int | None:
        return self._codes.get(value)

    def strings(self) -> list[str]:
        return list(self._codes)

    def truncate(self, size: int) -> None:
        """Forget the strings added after the table had ``size`` of them."""
        for value in list(self._codes)[size:]:
            del self._codes[value]


class UserSample:
    """The ``size`` users with the smallest BLAKE2b hashes keyed by ``seed``."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self._key = size, str(seed).encode()
        self.hashes = np.empty(0, dtype=np.uint64)
        self.threshold = np.uint64(np.iinfo(np.uint64).max)

    def add(self, users: list[str]) -> None:
        if not users:
            return
        found = [
            int.from_bytes(hashlib.blake2b(u.encode(), digest_size=8, key=self._key).digest())
            for u in users
        ]
        self.hashes = np.concatenate([self.hashes, np.array(found, dtype=np.uint64)])
        self._update()

    def truncate(self, size: int) -> None:
        self.hashes = self.hashes[:size]
        self._update()

    def _update(self) -> None:
        if len(self.hashes) > self.size:
            self.threshold = np.partition(self.hashes, self.size - 1)[self.size - 1]
        else:
            self.threshold = np.uint64(np.iinfo(np.uint64).max)

    def kept(self, users: Codes) -> npt.NDArray[np.bool_]:
        return self.hashes[users] <= self.threshold


@dataclass(frozen=True)
class LogColumns:
    """The log, finished: codes index the sorted distinct IDs (``np.unique``'s numbering)."""

    user_ids: npt.NDArray[np.str_]
    item_ids: npt.NDArray[np.str_]
    users: npt.NDArray[np.int64]
    items: npt.NDArray[np.int64]
    ts: npt.NDArray[np.int64]
    labels: npt.NDArray[np.int8]
    events: npt.NDArray[np.int8]
    requests: npt.NDArray[np.bool_]


class Interactions:
    """The log as read, in the order read: appended in batches (:meth:`append`) or a row at a
    time (:meth:`add`, buffered into batches of ``batch_rows``).

    An item may carry a tag (Taobao's category id): the one on its first row is kept.
    """

    def __init__(
        self,
        *,
        sample_users: int | None = None,
        seed: int = 0,
        since: int | None = None,
        until: int | None = None,
        batch_rows: int = 65_536,
    ) -> None:
        self.users, self.items, self.tags = IdTable(), IdTable(), IdTable()
        self.sample = None if sample_users is None else UserSample(sample_users, seed)
        self.since, self.until, self.batch_rows = since, until, batch_rows
        self._columns: dict[str, list[npt.NDArray[Any]]] = {c: [] for c in _COLUMNS}
        self._item_tags: list[Codes] = []  # each item's tag code, in item code order; -1: none
        self._pending: list[list[object]] = [[] for _ in range(7)]
        self._rows = 0
        self._purged_at = 0
        #: How many batches were appended and the rows of the largest (before sampling).
        self.batches, self.largest_batch = 0, 0

    def __len__(self) -> int:
        return self._rows + len(self._pending[0])

    @property
    def nbytes(self) -> int:
        """Bytes the appended rows' columns hold (not the ID tables, not :meth:`add`'s buffer)."""
        return sum(chunk.nbytes for chunks in self._columns.values() for chunk in chunks)

    def add(
        self,
        user: str,
        item: str,
        ts: int,
        *,
        label: int,
        event: int,
        request: bool = True,
        tag: str | None = None,
    ) -> None:
        for column, value in zip(
            self._pending, (user, item, ts, label, event, request, tag), strict=True
        ):
            column.append(value)
        if len(self._pending[0]) >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        """Append the rows :meth:`add` buffered."""
        users, items, ts, labels, events, requests, tags = self._pending
        if not users:
            return
        self._pending = [[] for _ in range(7)]
        self.append(
            pa.array(users, pa.string()),
            pa.array(items, pa.string()),
            np.asarray(ts, dtype=np.int64),
            np.asarray(labels, dtype=np.int8),
            np.asarray(events, dtype=np.int8),
            np.asarray(requests, dtype=bool),
            tags=None if tags[0] is None else pa.array(tags, pa.string()),
        )

    def append(
        self,
        users: pa.Array,
        items: pa.Array,
        ts: npt.NDArray[np.int64],
        labels: npt.NDArray[np.int8],
        events: npt.NDArray[np.int8],
        requests: npt.NDArray[np.bool_],
        *,
        tags: pa.Array | None = None,
    ) -> None:
        """One batch of rows: IDs as Arrow strings, the rest as NumPy arrays of equal length."""
        self.batches += 1
        self.largest_batch = max(self.largest_batch, len(ts))
        values: dict[str, npt.NDArray[Any]] = {
            "ts": ts,
            "labels": labels,
            "events": events,
            "requests": requests,
        }
        window = np.ones(len(ts), dtype=bool)
        if self.since is not None:
            window &= ts >= self.since
        if self.until is not None:
            window &= ts < self.until
        if not window.all():
            users, items, tags = _take(users, window), _take(items, window), _take(tags, window)
            values = {name: column[window] for name, column in values.items()}
        values["users"], _, new_users = self.users.encode(users)
        if self.sample is not None:
            self.sample.add(new_users)
            kept = self.sample.kept(values["users"])
            if not kept.all():
                items, tags = _take(items, kept), _take(tags, kept)
                values = {name: column[kept] for name, column in values.items()}
        values["items"], first_rows, _ = self.items.encode(items)
        if tags is not None:
            tag_codes, _, _ = self.tags.encode(tags.take(pa.array(first_rows)))
        else:
            tag_codes = np.full(len(first_rows), -1, dtype=np.int32)
        self._item_tags.append(tag_codes)
        for name in _COLUMNS:
            self._columns[name].append(np.ascontiguousarray(values[name], dtype=_DTYPES[name]))
        self._rows += len(values["ts"])
        if self.sample is not None and self._rows > 2 * self._purged_at + self.batch_rows:
            self._purge()

    def _purge(self) -> None:
        """Drop the rows of users pushed out of the sample since the last purge."""
        assert self.sample is not None
        chunks = self._columns
        for index, users in enumerate(chunks["users"]):
            kept = self.sample.kept(users.astype(np.int32, copy=False))
            if not kept.all():
                for name in _COLUMNS:
                    chunks[name][index] = chunks[name][index][kept]
        self._rows = sum(len(users) for users in chunks["users"])
        self._purged_at = self._rows

    def mark(self) -> tuple[int, ...]:
        """Where the log stands, for :meth:`rollback` (a file read again line by line)."""
        self.flush()
        tables = (len(self.users), len(self.items), len(self.tags))
        return len(self._columns["users"]), *tables, self.batches, self.largest_batch

    def rollback(self, mark: tuple[int, ...]) -> None:
        """Back to ``mark``, as if what was appended since had never been read."""
        chunks, users, items, tags, self.batches, self.largest_batch = mark
        self._pending = [[] for _ in range(7)]
        for name in _COLUMNS:
            del self._columns[name][chunks:]
        self._rows = sum(len(codes) for codes in self._columns["users"])
        self.users.truncate(users)
        self.items.truncate(items)
        self.tags.truncate(tags)
        if self._item_tags:
            self._item_tags = [np.concatenate(self._item_tags)[:items]]
        if self.sample is not None:
            self.sample.truncate(users)

    def item_strings(self) -> pa.Array:
        """The distinct item IDs read so far (for joining metadata files to the log)."""
        self.flush()
        return pa.array(self.items.strings(), pa.string())

    def item_tags(self) -> Callable[[str], str | None]:
        """Once reading is done: the tag on the first row of an item (None: never read)."""
        self.flush()
        tags = np.concatenate(self._item_tags) if self._item_tags else np.empty(0, np.int32)
        names, codes = self.tags.strings(), self.items

        def tag(item: str) -> str | None:
            code = codes.code(item)
            return None if code is None or tags[code] < 0 else names[tags[code]]

        return tag

    def finish(self) -> LogColumns:
        """The columns, with codes renumbered in the sorted order of the ID strings (the
        numbering of ``np.unique``); only IDs that still have rows are kept."""
        self.flush()
        if self.sample is not None:
            self._purge()
        columns = {}
        for name in _COLUMNS:  # one column at a time: the chunks go as the whole is built
            columns[name] = _concatenate(self._columns[name], _DTYPES[name])
        user_ids, users = _sorted_codes(self.users, columns.pop("users"))
        item_ids, items = _sorted_codes(self.items, columns.pop("items"))
        return LogColumns(user_ids, item_ids, users, items, **columns)  # type: ignore[arg-type]


def _take(values: pa.Array | None, mask: npt.NDArray[np.bool_]) -> pa.Array | None:
    return None if values is None else values.filter(pa.array(mask))


def _concatenate(
    chunks: list[npt.NDArray[np.generic]], dtype: type[np.generic]
) -> npt.NDArray[np.generic]:
    whole = np.concatenate(chunks) if chunks else np.empty(0, dtype=dtype)
    chunks.clear()
    return whole


def _sorted_codes(
    table: IdTable, codes: npt.NDArray[np.generic]
) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.int64]]:
    """The distinct strings in use, sorted, and each row's position among them."""
    used = np.zeros(len(table), dtype=bool)
    used[codes] = True
    in_use = np.flatnonzero(used)
    strings: Sequence[str] = table.strings()
    if len(in_use) < len(strings):
        strings = [strings[code] for code in in_use.tolist()]
    values = np.array(strings)
    order = np.argsort(values, kind="stable")
    rank = np.zeros(len(table), dtype=np.int64)
    rank[in_use[order]] = np.arange(len(order), dtype=np.int64)
    return values[order], rank[codes]
