"""Simple behaviour generators GBR must beat: each proposes K items per user, none from the
user's history, from the same training-period data GBR saw.

* popularity: the most engaged items;
* co-occurrence: item-to-item collaborative filtering (cosine-normalised counts of users who
  engaged both items), summed over the user's history;
* semantic nearest neighbours: the items closest to the user's last item in the semantic space;
* random: uniform over the catalogue (a floor for the consistency metric).

Each judges a user by the first ``lengths`` items of their sequence (default: all of it), and
takes its statistics from ``fit`` (default: the same sequences), so a history that grew after
the split is read with what was known at the split. All score the catalogue densely per chunk
of users; fine at evaluation sizes, not meant to serve.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from offline.gbr.log_prior import LogPrior
from offline.gbr.sequences import BehaviourSequences

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float32]
#: (users, history lengths) -> [len(users), n_items]
Scores = Callable[[Ints, Ints], npt.NDArray[np.floating]]
_CHUNK = 512


def top_k_excluding(
    scores: Scores,
    users: Ints,
    sequences: BehaviourSequences,
    k: int,
    n_items: int,
    lengths: Ints | None = None,
) -> Ints:
    """The ``k`` highest-scoring items of each user that are not in their first ``lengths``
    items (default: their whole sequence)."""
    users = np.asarray(users, np.int64)
    lengths = _lengths(sequences, users, lengths)
    out = np.full((len(users), k), -1, np.int64)
    for first in range(0, len(users), _CHUNK):
        chunk, chunk_lengths = users[first : first + _CHUNK], lengths[first : first + _CHUNK]
        dense = np.asarray(scores(chunk, chunk_lengths), np.float64).copy()
        history = sequences.histories(chunk, chunk_lengths)
        rows, cols = np.nonzero(history >= 0)
        dense[rows, history[rows, cols]] = -np.inf
        top = np.argpartition(-dense, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(dense, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        finite = np.isfinite(np.take_along_axis(dense, top, axis=1))
        out[first : first + len(chunk)] = np.where(finite, top, -1)
    return out


def item_popularity(sequences: BehaviourSequences, n_items: int) -> Floats:
    """How many users engaged each item."""
    return np.bincount(sequences.items, minlength=n_items).astype(np.float32)


def popularity(
    sequences: BehaviourSequences,
    users: Ints,
    k: int,
    n_items: int,
    lengths: Ints | None = None,
    fit: BehaviourSequences | None = None,
) -> Ints:
    counts = item_popularity(fit or sequences, n_items)
    return top_k_excluding(
        lambda chunk, _: np.broadcast_to(counts, (len(chunk), n_items)),
        users, sequences, k, n_items, lengths,
    )  # fmt: skip


def cooccurrence(
    sequences: BehaviourSequences,
    users: Ints,
    k: int,
    n_items: int,
    lengths: Ints | None = None,
    fit: BehaviourSequences | None = None,
) -> Ints:
    prior = LogPrior.of(fit or sequences, n_items)

    def scores(chunk: Ints, chunk_lengths: Ints) -> npt.NDArray[np.floating]:
        return prior.scores(sequences.histories(chunk, chunk_lengths))

    return top_k_excluding(scores, users, sequences, k, n_items, lengths)


def semantic_neighbours(
    sequences: BehaviourSequences,
    users: Ints,
    k: int,
    semantic: Floats,
    lengths: Ints | None = None,
) -> Ints:
    n_items = len(semantic)

    def scores(chunk: Ints, chunk_lengths: Ints) -> npt.NDArray[np.floating]:
        last = sequences.windows(chunk, chunk_lengths, 1)[:, 0]
        dense = semantic[np.maximum(last, 0)] @ semantic.T
        return np.where((last >= 0)[:, None], dense, 0.0)

    return top_k_excluding(scores, users, sequences, k, n_items, lengths)


def random_items(
    sequences: BehaviourSequences,
    users: Ints,
    k: int,
    n_items: int,
    seed: int = 0,
    lengths: Ints | None = None,
) -> Ints:
    rng = np.random.default_rng(seed)
    return top_k_excluding(
        lambda chunk, _: rng.random((len(chunk), n_items)), users, sequences, k, n_items, lengths
    )


def _lengths(sequences: BehaviourSequences, users: Ints, lengths: Ints | None) -> Ints:
    if lengths is None:
        return sequences.lengths()[users]
    lengths = np.asarray(lengths, np.int64)
    if lengths.shape != users.shape or (lengths > sequences.lengths()[users]).any():
        raise ValueError("each user needs one history length, at most their sequence's")
    return lengths
