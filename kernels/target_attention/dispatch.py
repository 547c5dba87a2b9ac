"""Pick a target-attention implementation by an explicit backend.

Optional backends are imported only when chosen, so the CPU serving path (NumPy) never loads
PyTorch or Triton; choosing one that is not installed fails with a message saying what to install.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from kernels.target_attention import reference
from kernels.target_attention.jagged import AttentionPool, Offsets, PooledAttention
from kernels.target_attention.reference import FloatArray


class AttentionBackend(StrEnum):
    """Implementations of target attention. ``NUMPY`` is the CPU serving path."""

    NUMPY = "numpy"
    PYTORCH = "pytorch"
    TRITON = "triton"


def target_attention(
    queries: FloatArray,
    keys: FloatArray,
    values: FloatArray,
    mask: FloatArray,
    heads: int,
    return_weights: bool = False,
    backend: AttentionBackend = AttentionBackend.NUMPY,
) -> tuple[FloatArray, FloatArray | None]:
    """Padded-batch target attention, as :func:`reference.target_attention` defines it."""
    if backend is AttentionBackend.NUMPY:
        return reference.target_attention(queries, keys, values, mask, heads, return_weights)
    raise ValueError(f"padded target attention runs on NumPy only, not {backend!r}")


def jagged_target_attention(
    candidate_offsets: Offsets,
    pools: list[AttentionPool[Any]],
    heads: int,
    return_weights: bool = False,
    backend: AttentionBackend = AttentionBackend.NUMPY,
) -> list[PooledAttention[Any]]:
    """Jagged multi-head target attention over every pool; see :mod:`.jagged` for the layout.

    NumPy takes NumPy arrays; PyTorch and Triton take tensors (Triton: on a CUDA device, or on
    CPU under ``TRITON_INTERPRET=1``).
    """
    if backend is AttentionBackend.NUMPY:
        return reference.jagged_target_attention(candidate_offsets, pools, heads, return_weights)
    if backend is AttentionBackend.PYTORCH:
        module = _optional("kernels.target_attention.pytorch", "torch")
    elif backend is AttentionBackend.TRITON:
        needs = "torch and triton (the `kernels` extra)"
        module = _optional("kernels.target_attention.triton", needs)
    else:
        raise ValueError(f"unknown attention backend {backend!r}")
    result: list[PooledAttention[Any]] = module.jagged_target_attention(
        candidate_offsets, pools, heads, return_weights
    )
    return result


def _optional(module: str, needs: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise RuntimeError(f"attention backend {module.rsplit('.', 1)[1]} needs {needs}") from error
