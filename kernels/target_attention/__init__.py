"""Jagged multi-head target attention: references, Triton kernels and a dispatcher."""

from kernels.target_attention.dispatch import (
    AttentionBackend,
    jagged_target_attention,
    target_attention,
)
from kernels.target_attention.jagged import AttentionPool, PooledAttention, offsets_from_lengths

__all__ = [
    "AttentionBackend",
    "AttentionPool",
    "PooledAttention",
    "jagged_target_attention",
    "offsets_from_lengths",
    "target_attention",
]
