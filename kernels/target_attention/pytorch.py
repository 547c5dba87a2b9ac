"""PyTorch reference of jagged target attention, in float32 whatever the input dtype.

Short and obviously right: one request at a time, plain softmax. The Triton kernels are tested
against it; it also serves as the "naive PyTorch" point of the benchmarks.
"""

from __future__ import annotations

import math

import torch

from kernels.target_attention.jagged import (
    AttentionPool,
    Offsets,
    PooledAttention,
    check_jagged,
    weight_offsets,
)


def jagged_target_attention(
    candidate_offsets: Offsets,
    pools: list[AttentionPool[torch.Tensor]],
    heads: int,
    return_weights: bool = False,
) -> list[PooledAttention[torch.Tensor]]:
    check_jagged(candidate_offsets, pools)
    return [_one_pool(candidate_offsets, pool, heads, return_weights) for pool in pools]


def _one_pool(
    candidate_offsets: Offsets,
    pool: AttentionPool[torch.Tensor],
    heads: int,
    return_weights: bool,
) -> PooledAttention[torch.Tensor]:
    total, dim = pool.queries.shape
    head_dim = dim // heads
    pooled = torch.zeros((total, dim), dtype=torch.float32, device=pool.queries.device)
    blocks = []
    for r in range(len(candidate_offsets) - 1):
        c0, c1 = int(candidate_offsets[r]), int(candidate_offsets[r + 1])
        l0, l1 = int(pool.offsets[r]), int(pool.offsets[r + 1])
        if c1 == c0 or l1 == l0:
            continue
        q = pool.queries[c0:c1].float().reshape(c1 - c0, heads, head_dim).transpose(0, 1)
        k = pool.keys[l0:l1].float().reshape(l1 - l0, heads, head_dim).transpose(0, 1)
        v = pool.values[l0:l1].float().reshape(l1 - l0, heads, head_dim).transpose(0, 1)
        weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(head_dim), dim=-1)  # [H,C,L]
        pooled[c0:c1] = (weights @ v).transpose(0, 1).reshape(c1 - c0, dim)
        if return_weights:
            blocks.append(weights.mean(dim=0).reshape(-1))
    if not return_weights:
        return PooledAttention(pooled)
    packed = torch.cat(blocks) if blocks else torch.zeros(0, device=pool.queries.device)
    return PooledAttention(pooled, packed, weight_offsets(candidate_offsets, pool.offsets))
