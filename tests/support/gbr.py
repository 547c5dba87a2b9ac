"""Shared pieces of the generator tests: a small network, random unit vectors standing in
for semantic vectors, and a dataset with new events (what the nearline job reacts to)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from offline.data.canonical import Behaviours, Dataset


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


#: A generator network small enough for unit tests.
SMALL_NET = {"dim": 32, "heads": 2, "layers": 1, "ff_dim": 64, "history_items": 16}


def with_new_events(dataset: Dataset, users: np.ndarray) -> Dataset:
    """``dataset`` with one new event (an item none had seen) for each of ``users``, a minute
    after its last event, in the canonical order (by user, then time)."""
    beh = dataset.behaviours
    ts = int(beh.ts.max()) + 60
    unseen = np.setdiff1d(np.arange(len(dataset.catalogue)), beh.item_idx)[: len(users)]
    added = Behaviours(
        user_idx=np.concatenate([beh.user_idx, users.astype(np.int32)]),
        item_idx=np.concatenate([beh.item_idx, unseen.astype(np.int32)]),
        ts=np.concatenate([beh.ts, np.full(len(users), ts)]),
        event=np.concatenate([beh.event, np.ones(len(users), np.int8)]),
    )
    order = np.lexsort((added.ts, added.user_idx))
    return replace(
        dataset,
        behaviours=Behaviours(
            added.user_idx[order], added.item_idx[order], added.ts[order], added.event[order]
        ),
    )
