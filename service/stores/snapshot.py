"""The user snapshot of the embedded store: one ``.npz`` file, no pickles.

Format (``format_version`` 1), users in any order, each user's behaviours oldest first:

- ``user_ids`` [U] str, ``offsets`` [U+1] int64: user ``u``'s behaviours are rows
  ``offsets[u]:offsets[u+1]`` of ``items`` [N] str, ``events`` [N] uint8 (event-type ids of
  :mod:`service.contracts.features`) and ``ts`` [N] int64 (Unix seconds);
- optional generated behaviours: ``gen_user_ids`` [G] str, ``gen_offsets`` [G+1] int64,
  ``gen_items`` [M] str, ``gen_vectors`` [M, d] float16, ``gen_version`` 0-d str (GBR version).

The offline publisher writes it with :func:`write_user_snapshot`; the embedded store reads it with
:meth:`UserSnapshot.load`, and the nearline job replaces its generated behaviours with
:meth:`UserSnapshot.write_with_generated`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from service.stores.base import GeneratedBehaviours, UserSequence

FORMAT_VERSION = 1

Strings = npt.NDArray[np.str_]
Offsets = npt.NDArray[np.int64]


@dataclass(frozen=True)
class GeneratedBlocks:
    """Generated behaviours of many users, laid out like the sequences (CSR)."""

    user_ids: Strings
    offsets: Offsets
    items: Strings
    vectors: npt.NDArray[np.floating]
    version: str


def write_user_snapshot(
    path: Path,
    user_ids: npt.ArrayLike,
    offsets: npt.ArrayLike,
    items: npt.ArrayLike,
    events: npt.ArrayLike,
    ts: npt.ArrayLike,
    generated: GeneratedBlocks | None = None,
) -> None:
    """Write a snapshot in the format above (validated, so a bad one fails here, not online)."""
    arrays: dict[str, Any] = {
        "format_version": np.asarray(FORMAT_VERSION, np.int64),
        "user_ids": np.asarray(user_ids, np.str_),
        "offsets": np.asarray(offsets, np.int64),
        "items": np.asarray(items, np.str_),
        "events": np.asarray(events, np.uint8),
        "ts": np.asarray(ts, np.int64),
    }
    _check_csr("sequences", arrays["user_ids"], arrays["offsets"], len(arrays["items"]))
    if not len(arrays["items"]) == len(arrays["events"]) == len(arrays["ts"]):
        raise ValueError("items, events and ts must have one row per behaviour")
    if generated is not None:
        arrays |= {
            "gen_user_ids": np.asarray(generated.user_ids, np.str_),
            "gen_offsets": np.asarray(generated.offsets, np.int64),
            "gen_items": np.asarray(generated.items, np.str_),
            "gen_vectors": np.asarray(generated.vectors, np.float16),
            "gen_version": np.asarray(generated.version, np.str_),
        }
        _check_csr("generated", arrays["gen_user_ids"], arrays["gen_offsets"], len(generated.items))
        if arrays["gen_vectors"].ndim != 2 or len(arrays["gen_vectors"]) != len(generated.items):
            raise ValueError("gen_vectors must be [rows of gen_items, d]")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


def _check_csr(what: str, user_ids: np.ndarray, offsets: np.ndarray, rows: int) -> None:
    if offsets.shape != (len(user_ids) + 1,) or offsets[0] != 0 or offsets[-1] != rows:
        raise ValueError(f"{what}: offsets must be [users + 1], start at 0 and end at {rows}")
    if np.any(np.diff(offsets) < 0):
        raise ValueError(f"{what}: offsets must not decrease")
    if len(set(user_ids.tolist())) != len(user_ids):
        raise ValueError(f"{what}: user IDs must be unique")


class UserSnapshot:
    """Read side of the snapshot: a user's sequence and generated behaviours by ID."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self._user_ids = arrays["user_ids"]
        self._items = arrays["items"]
        self._events = arrays["events"]
        self._ts = arrays["ts"]
        self._offsets = arrays["offsets"]
        self._rows = {user: row for row, user in enumerate(arrays["user_ids"].tolist())}
        self._gen: GeneratedBlocks | None = None
        self._gen_rows: dict[str, int] = {}
        if "gen_user_ids" in arrays:
            self._gen = GeneratedBlocks(
                arrays["gen_user_ids"],
                arrays["gen_offsets"],
                arrays["gen_items"],
                arrays["gen_vectors"],
                str(arrays["gen_version"]),
            )
            self._gen_rows = {u: row for row, u in enumerate(self._gen.user_ids.tolist())}

    @classmethod
    def empty(cls) -> UserSnapshot:
        none = np.zeros(0, np.str_)
        return cls(
            {
                "items": none,
                "events": np.zeros(0, np.uint8),
                "ts": np.zeros(0, np.int64),
                "offsets": np.zeros(1, np.int64),
                "user_ids": none,
            }
        )

    @classmethod
    def load(cls, path: Path) -> UserSnapshot:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        version = int(arrays.get("format_version", FORMAT_VERSION))
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{path}: snapshot format {version}, this service reads {FORMAT_VERSION}"
            )
        return cls(arrays)

    def write_with_generated(self, path: Path, generated: GeneratedBlocks) -> None:
        """Write this snapshot to ``path``: its sequences as they are, ``generated`` as its
        generated behaviours (in place of any it holds)."""
        write_user_snapshot(
            path,
            self._user_ids,
            self._offsets,
            self._items,
            self._events,
            self._ts,
            generated=generated,
        )

    @property
    def users(self) -> int:
        return len(self._rows)

    @property
    def generated_blocks(self) -> GeneratedBlocks | None:
        """Every user's generated behaviours, as stored; None when the snapshot has none."""
        return self._gen

    def generated_dim(self) -> int | None:
        return None if self._gen is None else int(self._gen.vectors.shape[1])

    @property
    def behaviour_items(self) -> np.ndarray:
        """The item ID of every stored behaviour, users one after another."""
        return self._items

    def span(self, user_id: str) -> slice | None:
        """Where the user's behaviours sit in :attr:`behaviour_items`; None for an unknown user."""
        row = self._rows.get(user_id)
        if row is None:
            return None
        return slice(int(self._offsets[row]), int(self._offsets[row + 1]))

    def sequence(self, user_id: str) -> UserSequence | None:
        row = self._rows.get(user_id)
        if row is None:
            return None
        start, end = self._offsets[row], self._offsets[row + 1]
        return UserSequence(
            self._items[start:end].tolist(),
            self._events[start:end].copy(),
            self._ts[start:end].copy(),
        )

    def generated(self, user_id: str) -> GeneratedBehaviours | None:
        row = self._gen_rows.get(user_id)
        if self._gen is None or row is None:
            return None
        start, end = self._gen.offsets[row], self._gen.offsets[row + 1]
        if start == end:
            return None
        return GeneratedBehaviours(
            self._gen.items[start:end].tolist(),
            self._gen.vectors[start:end].astype(np.float32),
            self._gen.version,
        )
