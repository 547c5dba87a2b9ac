"""Appending behaviours to a user's capped sequence: idempotent by event ID, ordered by time.

Both stores run :func:`merge_events` under their own atomicity (a lock in process, a
compare-and-set script in Redis), so they agree on every rule:

- an event with an ``event_id`` that the user's window of recent IDs holds, or that an earlier
  event of the same batch carries, is a duplicate and is not appended; events without an ID are
  always appended;
- the sequence stays ordered by timestamp: an out-of-order event is inserted in place (after
  stored events of the same second), and the newest ``max_length`` are kept;
- the window keeps the IDs of the ``id_window`` newest events by timestamp. An ID that fell out
  of it belongs to an event older than that many newer ones, so with ``id_window >=
  max_length`` a replay of it lands outside the capped sequence (ordering makes that safe).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.stores.base import UserSequence

DEFAULT_ID_WINDOW = 1024


@dataclass(frozen=True, slots=True)
class NewEvents:
    """Behaviours to append, in any order, each with an optional idempotency key."""

    sequence: UserSequence
    event_ids: tuple[str | None, ...]

    def __post_init__(self) -> None:
        if len(self.event_ids) != len(self.sequence):
            raise ValueError(f"{len(self.event_ids)} event IDs for {len(self.sequence)} behaviours")

    def __len__(self) -> int:
        return len(self.sequence)

    @classmethod
    def of(cls, sequence: UserSequence, event_ids: Sequence[str | None] = ()) -> NewEvents:
        """Events without IDs when ``event_ids`` is empty."""
        return cls(sequence, tuple(event_ids) if event_ids else (None,) * len(sequence))

    def ids(self) -> list[str]:
        """The distinct IDs the batch carries."""
        return list(dict.fromkeys(i for i in self.event_ids if i is not None))


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What an append did: events appended, duplicates skipped, the sequence length after."""

    appended: int
    duplicates: int
    sequence_length: int


@dataclass(frozen=True, slots=True)
class MergedEvents:
    """The sequence after an append, and where each of its rows came from."""

    sequence: UserSequence
    origins: npt.NDArray[np.int64]
    """Per row: ``r >= 0`` is row ``r`` of the stored sequence, ``-1 - j`` row ``j`` of the
    appended events (so stored item vectors can be reused)."""
    recorded_ids: dict[str, int]
    """IDs of the appended events, with their timestamps (the window's scores)."""
    result: AppendResult


def merge_events(
    current: UserSequence, seen_ids: Mapping[str, object], new: NewEvents, max_length: int
) -> MergedEvents:
    """Append the events of ``new`` that ``seen_ids`` (the window) does not hold."""
    keep: list[int] = []
    recorded: dict[str, int] = {}
    for row, event_id in enumerate(new.event_ids):
        if event_id is not None:
            if event_id in seen_ids or event_id in recorded:
                continue
            recorded[event_id] = int(new.sequence.timestamps[row])
        keep.append(row)
    rows = np.asarray(keep, np.int64)
    fresh = new.sequence
    timestamps = np.concatenate([current.timestamps, fresh.timestamps[rows]])
    # Stable: ties keep stored events first, then the batch in its own order.
    order = np.argsort(timestamps, kind="stable")[-max_length:] if max_length > 0 else rows[:0]
    origins = np.concatenate([np.arange(len(current), dtype=np.int64), -1 - rows])[order]
    items = current.item_ids + [fresh.item_ids[r] for r in keep]
    events = np.concatenate([current.events, fresh.events[rows]])
    merged = UserSequence([items[i] for i in order], events[order], timestamps[order])
    result = AppendResult(len(keep), len(new) - len(keep), len(merged))
    return MergedEvents(merged, origins, recorded, result)


def trim_window(ids: dict[str, int], id_window: int) -> dict[str, int]:
    """The ``id_window`` newest IDs by timestamp (the embedded store's window)."""
    if len(ids) <= id_window:
        return ids
    newest = sorted(ids.items(), key=lambda pair: pair[1])[-id_window:]
    return dict(newest)
