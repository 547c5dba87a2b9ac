"""The generator's training logs as a co-occurrence prior, kept in its checkpoint.

Blended blocks (:mod:`offline.gbr.fusion`) mix the generator's probabilities with item-to-item
co-occurrence. The statistics are the events the generator was trained on, saved beside its
weights: a blended block never sees an event the generator could not (nothing after its
``until_ts``, none of a held-out fold's users), and the nearline job needs no second source.
The rows are anonymous: no user IDs, no times.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
from scipy import sparse

from offline.gbr.sequences import BehaviourSequences

Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class LogPrior:
    """The training logs as anonymous engagement rows: row ``r``'s items are
    ``items[offsets[r]:offsets[r+1]]`` (no user IDs, no times)."""

    offsets: Ints  # [rows + 1]
    items: Ints  # catalogue rows
    n_items: int

    @classmethod
    def of(cls, sequences: BehaviourSequences, n_items: int, users: Ints | None = None) -> LogPrior:
        """The engagement of ``users`` (every user when ``None``) in ``sequences``."""
        owner = np.repeat(np.arange(sequences.n_users, dtype=np.int64), sequences.lengths())
        keep = np.ones(len(owner), bool) if users is None else np.isin(owner, users)
        counts = np.bincount(owner[keep], minlength=sequences.n_users)
        offsets = np.concatenate([[0], np.cumsum(counts[counts > 0])]).astype(np.int64)
        flat = sequences.items[keep]
        return cls(offsets, np.asarray(flat, np.int64), n_items)

    @cached_property
    def similarity(self) -> sparse.csr_matrix:
        """Item-to-item cosine co-occurrence: users who engaged both items, over the square
        root of each item's users."""
        rows = np.repeat(np.arange(len(self.offsets) - 1), np.diff(self.offsets))
        data = np.ones(len(rows), np.float32)
        shape = (len(self.offsets) - 1, self.n_items)
        engaged = sparse.csr_matrix((data, (rows, self.items)), shape=shape)
        norm = sparse.diags(1.0 / np.sqrt(np.maximum(self.item_users, 1.0)))
        return sparse.csr_matrix(norm @ sparse.csr_matrix(engaged.T @ engaged) @ norm)

    @cached_property
    def item_users(self) -> npt.NDArray[np.float64]:
        """How many rows engaged each item."""
        return np.bincount(self.items, minlength=self.n_items).astype(np.float64)

    def scores(self, histories: Ints) -> npt.NDArray[np.float64]:
        """``[B, n_items]``: each item's co-occurrence with the items of each history row
        (``-1`` padded), the most engaged items ahead on ties (rows without signal get popular
        items)."""
        rows, cols = np.nonzero(histories >= 0)
        data = np.ones(len(rows), np.float32)
        picked = sparse.csr_matrix(
            (data, (rows, histories[rows, cols])), shape=(len(histories), self.n_items)
        )
        counts = self.item_users.astype(np.float32)
        tiebreak = 1e-6 * counts / max(1.0, float(counts.max(initial=0.0)))
        return np.asarray((picked @ self.similarity).todense()) + tiebreak
