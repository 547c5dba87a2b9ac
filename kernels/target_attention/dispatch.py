"""One way into target attention: pick an implementation by an explicit backend.

``ONNX_CPU`` and ``NUMPY`` run on the host over NumPy arrays, one request at a time
(:mod:`.cpu`): the CPU serving path, which never loads PyTorch or Triton. ``TORCH`` (the PyTorch
reference) and ``TRITON`` (the whole jagged batch in one launch) take tensors: the device serving
path, on a GPU or, for tests, on the CPU (Triton under ``TRITON_INTERPRET=1``). Optional backends
are imported only when chosen; choosing one that is not installed fails with a message saying what
to install.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from kernels.target_attention import cpu, reference
from kernels.target_attention.cpu import CpuAttention
from kernels.target_attention.jagged import AttentionPool, Offsets, PooledAttention
from kernels.target_attention.reference import FloatArray


class AttentionBackend(StrEnum):
    """Implementations of target attention."""

    ONNX_CPU = "onnx_cpu"
    """A small onnxruntime graph per request on the host: the CPU serving default."""
    NUMPY = "numpy"
    """NumPy per request on the host: the reference, and the CPU path without ``onnx``."""
    TORCH = "torch"
    """The PyTorch reference over tensors on any device."""
    TRITON = "triton"
    """The Triton kernel: the jagged batch in one launch (the GPU serving default)."""

    @property
    def on_host(self) -> bool:
        """Whether it takes NumPy arrays on the host (else tensors on a device)."""
        return self in (AttentionBackend.ONNX_CPU, AttentionBackend.NUMPY)


def default_backend(device: Literal["cpu", "cuda"]) -> AttentionBackend:
    """What serving uses on ``device`` unless told otherwise."""
    return AttentionBackend.TRITON if device == "cuda" else AttentionBackend.ONNX_CPU


def host_attention(
    backend: AttentionBackend, heads: int, head_dim: int, chunk_bytes: int = cpu.ONNX_CHUNK_BYTES
) -> CpuAttention:
    """The per-request host implementation of a host backend (what the CPU scorer calls between
    its graphs); ``ONNX_CPU`` runs at most ``chunk_bytes`` of logits per onnxruntime call and
    falls back to NumPy, saying so in the log, without ``onnx``."""
    if backend is AttentionBackend.ONNX_CPU:
        return cpu.cpu_attention(heads, head_dim, chunk_bytes)
    if backend is AttentionBackend.NUMPY:
        return cpu.NumpyAttention()
    raise ValueError(f"attention backend {backend.value} takes tensors, not host arrays")


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

    The host backends take NumPy arrays; ``TORCH`` and ``TRITON`` take tensors (Triton: on a
    CUDA device, or on CPU under ``TRITON_INTERPRET=1``).
    """
    if backend is AttentionBackend.NUMPY:
        return reference.jagged_target_attention(candidate_offsets, pools, heads, return_weights)
    if backend is AttentionBackend.ONNX_CPU:
        return cpu.jagged_target_attention(
            candidate_offsets, pools, heads, return_weights, cpu.cpu_attention
        )
    if backend is AttentionBackend.TORCH:
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
