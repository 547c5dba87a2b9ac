"""Each user's capped recent-behaviour sequence, as the stores hold it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from offline.data.canonical import Dataset


@dataclass(frozen=True)
class UserSequences:
    """Jagged sequences: user ``u``'s events are rows ``offsets[u]:offsets[u+1]``, oldest first."""

    user_ids: npt.NDArray[np.str_]
    offsets: npt.NDArray[np.int64]
    item_ids: npt.NDArray[np.str_]
    events: npt.NDArray[np.uint8]
    ts: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.user_ids)

    def of(self, user: int) -> slice:
        return slice(int(self.offsets[user]), int(self.offsets[user + 1]))


def latest_sequences(dataset: Dataset, max_len: int) -> UserSequences:
    """The last ``max_len`` behaviours of every user (users with none get an empty sequence)."""
    behaviours = dataset.behaviours
    order = np.lexsort((behaviours.ts, behaviours.user_idx))
    users = behaviours.user_idx[order].astype(np.int64)
    n_users = len(dataset.user_ids)
    counts = np.bincount(users, minlength=n_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank_from_end = counts[users] - (np.arange(len(users)) - starts[users])
    keep = order[rank_from_end <= max_len]
    kept_counts = np.minimum(counts, max_len)
    return UserSequences(
        user_ids=dataset.user_ids,
        offsets=np.concatenate(([0], np.cumsum(kept_counts))).astype(np.int64),
        item_ids=dataset.catalogue.item_ids[behaviours.item_idx[keep]],
        events=behaviours.event[keep].astype(np.uint8),
        ts=behaviours.ts[keep].astype(np.int64),
    )
