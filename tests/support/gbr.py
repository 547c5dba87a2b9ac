"""Shared pieces of the generator tests: a small network and random unit vectors standing in
for semantic vectors."""

from __future__ import annotations

import numpy as np


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


#: A generator network small enough for unit tests.
SMALL_NET = {"dim": 32, "heads": 2, "layers": 1, "ff_dim": 64, "history_items": 16}
