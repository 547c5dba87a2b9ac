"""NumPy reference of multi-head target attention: the definition every kernel is checked against.

Each candidate (query) attends over its request's behaviours (keys/values): :func:`target_attention`
takes a padded batch with a mask, :func:`jagged_target_attention` the packed jagged batch of
:mod:`kernels.target_attention.jagged`. A fully masked row pools to zeros, never NaN.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from kernels.target_attention.jagged import (
    AttentionPool,
    PooledAttention,
    check_jagged,
    weight_offsets,
)

FloatArray = npt.NDArray[np.float32]


def target_attention(
    queries: FloatArray,
    keys: FloatArray,
    values: FloatArray,
    mask: FloatArray,
    heads: int,
    return_weights: bool = False,
) -> tuple[FloatArray, FloatArray | None]:
    """Pool ``values`` for every query.

    Shapes: queries ``[B, C, d]``, keys and values ``[B, L, d]``, mask ``[B, L]`` (1 = real,
    0 = padding). Returns pooled ``[B, C, d]`` and, when asked, the attention weights averaged
    over heads ``[B, C, L]``.
    """
    batch, candidates, dim = queries.shape
    length = keys.shape[1]
    head_dim = dim // heads
    q = queries.reshape(batch, candidates, heads, head_dim).transpose(0, 2, 1, 3)
    k = keys.reshape(batch, length, heads, head_dim).transpose(0, 2, 3, 1)
    v = values.reshape(batch, length, heads, head_dim).transpose(0, 2, 1, 3)
    logits = np.matmul(q, k) * np.float32(1.0 / np.sqrt(head_dim))  # [B, H, C, L]
    valid = mask[:, None, None, :] > 0
    logits = np.where(valid, logits, np.float32(-1e30))
    logits -= logits.max(axis=-1, keepdims=True)
    weights = np.exp(logits) * valid
    # Guard the all-padding row: its sum is 0, so it pools to zeros instead of 0/0.
    weights /= np.maximum(weights.sum(axis=-1, keepdims=True), np.float32(1e-30))
    pooled = np.matmul(weights, v).transpose(0, 2, 1, 3).reshape(batch, candidates, dim)
    mean_weights = weights.mean(axis=1) if return_weights else None
    return pooled.astype(np.float32, copy=False), mean_weights


def jagged_target_attention(
    candidate_offsets: npt.NDArray[np.int64],
    pools: list[AttentionPool[FloatArray]],
    heads: int,
    return_weights: bool = False,
) -> list[PooledAttention[FloatArray]]:
    """The jagged op on NumPy: each request through :func:`target_attention` on its own."""
    check_jagged(candidate_offsets, pools)
    results = []
    for pool in pools:
        dim = pool.queries.shape[1]
        pooled = np.zeros((int(candidate_offsets[-1]), dim), np.float32)
        blocks: list[FloatArray] = []
        for r in range(len(candidate_offsets) - 1):
            rows = slice(int(candidate_offsets[r]), int(candidate_offsets[r + 1]))
            kv = slice(int(pool.offsets[r]), int(pool.offsets[r + 1]))
            length = kv.stop - kv.start
            if rows.stop == rows.start:
                continue
            if length == 0:
                blocks.append(np.zeros(0, np.float32))
                continue
            out, weights = target_attention(
                pool.queries[None, rows].astype(np.float32),
                pool.keys[None, kv].astype(np.float32),
                pool.values[None, kv].astype(np.float32),
                np.ones((1, length), np.float32),
                heads,
                return_weights,
            )
            pooled[rows] = out[0]
            if weights is not None:
                blocks.append(weights[0].reshape(-1))
        results.append(_pooled(pooled, blocks, candidate_offsets, pool, return_weights))
    return results


def _pooled(
    pooled: FloatArray,
    blocks: list[FloatArray],
    candidate_offsets: npt.NDArray[np.int64],
    pool: AttentionPool[FloatArray],
    return_weights: bool,
) -> PooledAttention[FloatArray]:
    if not return_weights:
        return PooledAttention(pooled)
    packed = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    return PooledAttention(pooled, packed, weight_offsets(candidate_offsets, pool.offsets))
