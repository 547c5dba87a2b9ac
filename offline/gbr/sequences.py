"""Users' behaviour sequences as the diffusion model reads them: distinct items, oldest first.

A click, the cart that follows it and the purchase after that are one interest, not three, and
generation must never propose an item the user already engaged with. So the model's sequence of a
user keeps each item once, at its first engagement; "the history before time t" is then every
distinct item first engaged strictly before t, and a prefix of that sequence is itself a valid,
leak-free history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from offline.data.canonical import Behaviours

Ints = npt.NDArray[np.int64]
PAD_ITEM = -1


@dataclass(frozen=True)
class BehaviourSequences:
    """Jagged: user ``u``'s distinct items are ``items[offsets[u]:offsets[u+1]]``, oldest first,
    with ``ts`` the time of each item's first engagement."""

    offsets: Ints  # [U + 1]
    items: Ints  # [N] catalogue rows
    ts: Ints  # [N] Unix seconds

    @property
    def n_users(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> Ints:
        return np.diff(self.offsets)

    def of(self, user: int) -> Ints:
        return self.items[self.offsets[user] : self.offsets[user + 1]]

    def length_before(self, users: Ints, ts: Ints) -> Ints:
        """How many of each user's items were first engaged strictly before the matching time."""
        users = np.asarray(users, np.int64)
        ts = np.asarray(ts, np.int64)
        if len(self.items) == 0:
            return np.zeros(len(users), np.int64)
        # One sortable key per (user, time), so one searchsorted answers every row at once.
        t0 = int(min(self.ts.min(), ts.min(initial=0)))
        span = int(max(self.ts.max(), ts.max(initial=0))) - t0 + 1
        owner = np.repeat(np.arange(self.n_users, dtype=np.int64), self.lengths())
        keys = owner * span + (self.ts - t0)
        end = np.searchsorted(keys, users * span + (ts - t0), side="left")
        return end - self.offsets[users]

    def windows(self, users: Ints, lengths: Ints, width: int) -> Ints:
        """The last ``width`` items of each user's first ``lengths`` items, right-aligned
        (``PAD_ITEM`` on the left), shape ``[n, width]``."""
        users = np.asarray(users, np.int64)
        end = self.offsets[users] + np.asarray(lengths, np.int64)
        start = np.maximum(self.offsets[users], end - width)
        rows = end[:, None] - width + np.arange(width)[None, :]
        valid = rows >= start[:, None]
        if len(self.items) == 0:
            return np.full(rows.shape, PAD_ITEM, np.int64)
        return np.where(valid, self.items[np.where(valid, rows, 0)], PAD_ITEM)

    def histories(self, users: Ints, lengths: Ints) -> Ints:
        """Each user's first ``lengths`` items, left-aligned, ``PAD_ITEM`` after: ``[n, max]``.

        The full history, not the model's window: generation excludes all of it.
        """
        lengths = np.asarray(lengths, np.int64)
        width = max(1, int(lengths.max(initial=0)))
        return self.windows(users, lengths, width)

    def last_ts(self) -> Ints:
        """Each user's latest first-engagement time (-1 for a user with none)."""
        lengths = self.lengths()
        last = np.full(self.n_users, -1, np.int64)
        has = lengths > 0
        last[has] = self.ts[self.offsets[1:][has] - 1]
        return last


def behaviour_sequences(
    behaviours: Behaviours, n_users: int, until_ts: int | None = None
) -> BehaviourSequences:
    """Every user's distinct items in order of first engagement; events at or after ``until_ts``
    (when given) are left out, so a model trained on the result never saw them."""
    user = behaviours.user_idx.astype(np.int64)
    item = behaviours.item_idx.astype(np.int64)
    ts = behaviours.ts.astype(np.int64)
    if until_ts is not None:
        keep = ts < until_ts
        user, item, ts = user[keep], item[keep], ts[keep]
    order = np.lexsort((ts, user))  # stable: equal times keep the log's order
    user, item, ts = user[order], item[order], ts[order]
    n_items = int(item.max(initial=-1)) + 1
    _, first = np.unique(user * max(n_items, 1) + item, return_index=True)
    first.sort()  # back to (user, time) order
    user, item, ts = user[first], item[first], ts[first]
    counts = np.bincount(user, minlength=n_users).astype(np.int64)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return BehaviourSequences(offsets=offsets, items=item, ts=ts)
