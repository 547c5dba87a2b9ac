"""Jagged batches for target attention: many requests packed into one launch.

Request ``r`` owns candidate rows ``candidate_offsets[r]:candidate_offsets[r+1]`` of the packed
queries, and, in each behaviour pool (real sequence, generated block), key/value rows
``pool.offsets[r]:pool.offsets[r+1]``. Rows are ``d = heads * head_dim`` wide, head ``h`` at
columns ``h*head_dim:(h+1)*head_dim`` (the layout the ONNX encoders emit). An empty pool row range
pools to zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

Array = TypeVar("Array")
Offsets = npt.NDArray[np.int64]


def offsets_from_lengths(lengths: Sequence[int] | npt.NDArray[np.integer]) -> Offsets:
    """``[0, l0, l0+l1, ...]``: the offsets of a packed jagged tensor."""
    return np.concatenate(([0], np.cumsum(np.asarray(lengths, dtype=np.int64)))).astype(np.int64)


@dataclass(frozen=True)
class AttentionPool(Generic[Array]):
    """One behaviour pool of a jagged batch: per-candidate queries and per-request keys/values."""

    queries: Array  # [total candidates, d]
    keys: Array  # [total behaviours of this pool, d]
    values: Array  # [total behaviours of this pool, d]
    offsets: Offsets  # [requests + 1], rows of keys/values per request


@dataclass(frozen=True)
class PooledAttention(Generic[Array]):
    """The result for one pool: pooled values per candidate and, when asked, the head-averaged
    attention weights, packed request by request as ``[C_r, L_r]`` blocks (row-major)."""

    pooled: Array  # [total candidates, d]
    weights: Array | None = None  # [sum_r C_r * L_r]
    weight_offsets: Offsets | None = None  # [requests + 1] into ``weights``


def weight_offsets(candidate_offsets: Offsets, pool_offsets: Offsets) -> Offsets:
    """Where each request's ``[C_r, L_r]`` block of weights starts in the packed weights."""
    return offsets_from_lengths(np.diff(candidate_offsets) * np.diff(pool_offsets))


def check_jagged(candidate_offsets: Offsets, pools: Sequence[AttentionPool[Any]]) -> None:
    """Raise ``ValueError`` unless every offset array is a valid, equally long CSR index."""
    for name, offsets in [("candidate", candidate_offsets)] + [
        (f"pool {i}", pool.offsets) for i, pool in enumerate(pools)
    ]:
        offsets = np.asarray(offsets)
        if offsets.ndim != 1 or len(offsets) != len(candidate_offsets) or offsets[0] != 0:
            raise ValueError(f"{name} offsets must be 1-D, start at 0, one per request + 1")
        if np.any(np.diff(offsets) < 0):
            raise ValueError(f"{name} offsets must not decrease")


def top_weights(
    weights: npt.NDArray[np.floating],
    candidate_offsets: Offsets,
    pool_offsets: Offsets,
    k: int,
) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
    """Per candidate, the ``k`` behaviours with the highest weight (row within its request's
    pool, weight), highest first: what ``explain`` shows. Takes the packed weights of a
    :class:`PooledAttention` (as NumPy)."""
    found = []
    block_start = 0
    for r in range(len(candidate_offsets) - 1):
        candidates = int(candidate_offsets[r + 1] - candidate_offsets[r])
        length = int(pool_offsets[r + 1] - pool_offsets[r])
        block = np.asarray(weights[block_start : block_start + candidates * length], np.float32)
        block_start += candidates * length
        matrix = block.reshape(candidates, length)
        order = np.argsort(-matrix, axis=1, kind="stable")[:, :k]
        for row in range(candidates):
            found.append((order[row].astype(np.int64), matrix[row, order[row]]))
    return found
