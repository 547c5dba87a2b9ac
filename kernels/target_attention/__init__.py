"""Jagged multi-head target attention: references, the CPU serving kernels, the Triton kernels and
the dispatcher that is the one way in (:func:`jagged_target_attention`, :func:`host_attention`)."""

from kernels.target_attention.dispatch import (
    AttentionBackend,
    default_backend,
    host_attention,
    jagged_target_attention,
    target_attention,
)
from kernels.target_attention.jagged import AttentionPool, PooledAttention, offsets_from_lengths

__all__ = [
    "AttentionBackend",
    "AttentionPool",
    "PooledAttention",
    "default_backend",
    "host_attention",
    "jagged_target_attention",
    "offsets_from_lengths",
    "target_attention",
]
