"""Semantic IDs: a few levels of codes per item from residual k-means over its semantic vector.

Why: a vocabulary of one token per item grows with the catalogue and gives an item with little or
no history an embedding nobody trained. Codes are shared by items whose knowledge is alike, so
the vocabulary stays ``levels x codes`` whatever the catalogue size, and a generated code tuple
can land on a brand-new item. Level 1 picks a coarse region of the semantic space; each further
level quantises what the previous levels left over (the residual).

Decoding maps a code tuple back to items with FAISS: the index holds every item's reconstructed
vector (the sum of its codes' centroids), so an item whose codes were generated is at distance 0
and the next nearest items follow; items in the user's history are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as error:  # pragma: no cover - the train extra installs it
        raise ImportError(
            "semantic IDs need FAISS: install the `train` extra (faiss-cpu)"
        ) from error
    return faiss


@dataclass(frozen=True)
class Codebook:
    """Centroids ``[levels, codes, d]`` and each item's code per level ``[n_items, levels]``."""

    centroids: Floats
    item_codes: Ints

    @property
    def levels(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def codes(self) -> int:
        return int(self.centroids.shape[1])

    def reconstruct(self, codes: Ints) -> Floats:
        """The vector a code tuple stands for: the sum of its levels' centroids, ``[..., d]``."""
        codes = np.asarray(codes, np.int64)
        parts = [self.centroids[level][codes[..., level]] for level in range(self.levels)]
        return np.sum(parts, axis=0).astype(np.float32)


def fit_codebook(vectors: Floats, levels: int, codes: int, seed: int = 0) -> Codebook:
    """Residual k-means: level ``l`` clusters what levels ``< l`` did not explain."""
    faiss = _faiss()
    data = np.ascontiguousarray(vectors, np.float32)
    n, dim = data.shape
    codes = max(1, min(codes, n))  # k-means needs at least as many points as clusters
    residual = data.copy()
    centroids = np.zeros((levels, codes, dim), np.float32)
    item_codes = np.zeros((n, levels), np.int64)
    for level in range(levels):
        kmeans = faiss.Kmeans(dim, codes, niter=25, seed=seed + level, verbose=False)
        kmeans.cp.min_points_per_centroid = 1  # small catalogues: no warning, same clustering
        kmeans.train(residual)
        centroids[level] = kmeans.centroids
        _, assigned = kmeans.index.search(residual, 1)
        item_codes[:, level] = assigned[:, 0]
        residual -= centroids[level][item_codes[:, level]]
    return Codebook(centroids=centroids, item_codes=item_codes)


class CodeDecoder:
    """Nearest items to generated code tuples, skipping excluded items (FAISS exact search)."""

    def __init__(self, codebook: Codebook) -> None:
        faiss = _faiss()
        self.codebook = codebook
        reconstructed = codebook.reconstruct(codebook.item_codes)
        self._index = faiss.IndexFlatL2(reconstructed.shape[1])
        self._index.add(np.ascontiguousarray(reconstructed))
        self._n_items = len(reconstructed)

    def decode(self, codes: Ints, confidence: Floats, excluded: Ints) -> tuple[Ints, Floats]:
        """Items for ``codes [B, K, levels]``: each slot takes its nearest item that is not in
        the row's ``excluded`` (``[B, E]``, -1 padded) nor taken by a more confident slot.

        Returns item rows ``[B, K]`` (-1 where nothing is left) and the confidences reordered
        the same way (most confident first).
        """
        batch, k, _ = codes.shape
        queries = self.codebook.reconstruct(codes).reshape(batch * k, -1)
        # Enough neighbours that exclusions and slots sharing a code still leave one free item.
        depth = min(self._n_items, k + excluded.shape[1] + 8)
        _, neighbours = self._index.search(np.ascontiguousarray(queries), depth)
        neighbours = neighbours.reshape(batch, k, depth)
        order = np.argsort(-confidence, axis=1, kind="stable")
        items = np.full((batch, k), -1, np.int64)
        for row in range(batch):
            taken = set(excluded[row][excluded[row] >= 0].tolist())
            for rank, slot in enumerate(order[row].tolist()):
                for item in neighbours[row, slot].tolist():
                    if item >= 0 and item not in taken:
                        items[row, rank] = item
                        taken.add(item)
                        break
        sorted_confidence = np.take_along_axis(confidence, order, axis=1).astype(np.float32)
        return items, sorted_confidence
