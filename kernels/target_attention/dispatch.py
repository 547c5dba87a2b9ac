"""Pick a target-attention implementation by an explicit backend."""

from __future__ import annotations

from enum import StrEnum

from kernels.target_attention import reference
from kernels.target_attention.reference import FloatArray


class AttentionBackend(StrEnum):
    """Implementations of target attention. ``NUMPY`` is the CPU serving path."""

    NUMPY = "numpy"


def target_attention(
    queries: FloatArray,
    keys: FloatArray,
    values: FloatArray,
    mask: FloatArray,
    heads: int,
    return_weights: bool = False,
    backend: AttentionBackend = AttentionBackend.NUMPY,
) -> tuple[FloatArray, FloatArray | None]:
    """Multi-head target attention, as :func:`reference.target_attention` defines it."""
    if backend is AttentionBackend.NUMPY:
        return reference.target_attention(queries, keys, values, mask, heads, return_weights)
    raise ValueError(f"unknown attention backend {backend!r}")
