"""NumPy reference of multi-head target attention: what the CPU serving path runs.

Each candidate (query) attends over its request's behaviours (keys/values); a padded batch with a
mask stands for the jagged one. A fully masked row pools to zeros, never NaN.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

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
