"""Triton kernels for jagged multi-head target attention.

One launch covers every request, head and pool (real sequence and generated block): program
``(r, b, pool * heads + h)`` takes ``BLOCK_C`` candidates of request ``r`` and streams that
request's keys/values of one head in ``BLOCK_L`` blocks with an online softmax, so each block of
K/V is loaded once for ``BLOCK_C`` candidates instead of once per candidate. Inputs may be
float32, float16 or bfloat16; the softmax and the accumulation are float32. A request with no
behaviours in a pool pools to zeros. Attention weights, when asked for, come from a second kernel
that replays the logits against the log-sum-exp the first one saved.

Tests run these kernels on CPU under ``TRITON_INTERPRET=1``; benchmarks run them on a GPU.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
import triton
import triton.language as tl

from kernels.target_attention.jagged import (
    AttentionPool,
    Offsets,
    PooledAttention,
    check_jagged,
    weight_offsets,
)

#: Block sizes tried by the autotuner on a GPU; keyed on power-of-two buckets of the longest
#: request's candidates and behaviours, so a new shape reuses the choice of its bucket.
AUTOTUNE_CONFIGS = [
    triton.Config({"BLOCK_C": bc, "BLOCK_L": bl}, num_warps=w, num_stages=s)
    for bc, bl, w, s in [
        (16, 32, 2, 2),
        (32, 32, 4, 2),
        (64, 32, 4, 2),
        (64, 64, 4, 3),
        (128, 32, 4, 2),
        (128, 64, 8, 3),
    ]
]
#: Fixed blocks for the interpreter, where autotuning would only cost time.
INTERPRETER_BLOCKS = {"BLOCK_C": 16, "BLOCK_L": 16}
MIN_HEAD_DIM = 16  # tl.dot needs every dimension >= 16


@triton.jit
def _attention_kernel(
    Q, K, V, Out, Lse,
    candidate_offsets, kv_offsets,
    n_requests, n_candidates,
    stride_qp, stride_qc, stride_k, stride_v, stride_op, stride_oc,
    scale,
    c_bucket, l_bucket,  # autotune keys only
    HEADS: tl.constexpr, HEAD_DIM: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_L: tl.constexpr,
    PRECISION: tl.constexpr, STORE_LSE: tl.constexpr, UPCAST: tl.constexpr,
):  # fmt: skip
    r = tl.program_id(0)
    pool = tl.program_id(2) // HEADS
    h = tl.program_id(2) % HEADS
    c_start = tl.load(candidate_offsets + r)
    c_end = tl.load(candidate_offsets + r + 1)
    first = c_start + tl.program_id(1) * BLOCK_C
    if first < c_end:
        kv_start = tl.load(kv_offsets + pool * (n_requests + 1) + r)
        kv_end = tl.load(kv_offsets + pool * (n_requests + 1) + r + 1)
        rows = first + tl.arange(0, BLOCK_C)
        row_ok = rows < c_end
        cols = h * HEAD_DIM + tl.arange(0, HEAD_DIM)
        q_ptrs = Q + pool * stride_qp + rows[:, None] * stride_qc + cols[None, :]
        q = tl.load(q_ptrs, mask=row_ok[:, None], other=0.0)
        if UPCAST:
            q = q.to(tl.float32)
        m_i = tl.full([BLOCK_C], float("-inf"), tl.float32)
        l_i = tl.zeros([BLOCK_C], tl.float32)
        acc = tl.zeros([BLOCK_C, HEAD_DIM], tl.float32)
        for start in range(kv_start, kv_end, BLOCK_L):
            keys = start + tl.arange(0, BLOCK_L)
            key_ok = keys < kv_end
            kv_mask = key_ok[:, None]
            k = tl.load(K + keys[:, None] * stride_k + cols[None, :], mask=kv_mask, other=0.0)
            if UPCAST:
                k = k.to(tl.float32)
            s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * scale
            s = tl.where(key_ok[None, :], s, float("-inf"))
            # The first key of every block is real, so m_new is finite and alpha well defined.
            m_new = tl.maximum(m_i, tl.max(s, 1))
            alpha = tl.exp(m_i - m_new)
            p = tl.exp(s - m_new[:, None])
            l_i = l_i * alpha + tl.sum(p, 1)
            v = tl.load(V + keys[:, None] * stride_v + cols[None, :], mask=kv_mask, other=0.0)
            if UPCAST:
                v = v.to(tl.float32)
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
            m_i = m_new
        has_keys = l_i > 0
        safe_l = tl.where(has_keys, l_i, 1.0)
        out = tl.where(has_keys[:, None], acc / safe_l[:, None], 0.0)
        o_ptrs = Out + pool * stride_op + rows[:, None] * stride_oc + cols[None, :]
        tl.store(o_ptrs, out.to(Out.dtype.element_ty), mask=row_ok[:, None])
        if STORE_LSE:
            lse_ptrs = Lse + (pool * n_candidates + rows) * HEADS + h
            tl.store(lse_ptrs, m_i + tl.log(safe_l), mask=row_ok)


@triton.jit
def _weights_kernel(
    Q, K, Lse, W,
    candidate_offsets, kv_offsets, w_offsets,
    n_requests, n_candidates,
    stride_qp, stride_qc, stride_k,
    scale,
    HEADS: tl.constexpr, HEAD_DIM: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_L: tl.constexpr, PRECISION: tl.constexpr, UPCAST: tl.constexpr,
):  # fmt: skip
    r = tl.program_id(0)
    pool = tl.program_id(2)
    c_start = tl.load(candidate_offsets + r)
    c_end = tl.load(candidate_offsets + r + 1)
    first = c_start + tl.program_id(1) * BLOCK_C
    if first < c_end:
        kv_start = tl.load(kv_offsets + pool * (n_requests + 1) + r)
        kv_end = tl.load(kv_offsets + pool * (n_requests + 1) + r + 1)
        w_base = tl.load(w_offsets + pool * (n_requests + 1) + r)
        rows = first + tl.arange(0, BLOCK_C)
        row_ok = rows < c_end
        for start in range(kv_start, kv_end, BLOCK_L):
            keys = start + tl.arange(0, BLOCK_L)
            key_ok = keys < kv_end
            w = tl.zeros([BLOCK_C, BLOCK_L], tl.float32)
            for h in tl.static_range(HEADS):
                cols = h * HEAD_DIM + tl.arange(0, HEAD_DIM)
                q_ptrs = Q + pool * stride_qp + rows[:, None] * stride_qc + cols[None, :]
                q = tl.load(q_ptrs, mask=row_ok[:, None], other=0.0)
                k_ptrs = K + keys[:, None] * stride_k + cols[None, :]
                k = tl.load(k_ptrs, mask=key_ok[:, None], other=0.0)
                if UPCAST:
                    q = q.to(tl.float32)
                    k = k.to(tl.float32)
                s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * scale
                lse_ptrs = Lse + (pool * n_candidates + rows) * HEADS + h
                lse = tl.load(lse_ptrs, mask=row_ok, other=0.0)
                w += tl.exp(s - lse[:, None])
            length = kv_end - kv_start
            w_ptrs = W + w_base + (rows - c_start)[:, None] * length + (keys - kv_start)[None, :]
            tl.store(w_ptrs, w / HEADS, mask=row_ok[:, None] & key_ok[None, :])


_autotuned_attention = triton.autotune(configs=AUTOTUNE_CONFIGS, key=["c_bucket", "l_bucket"])(
    _attention_kernel
)


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def _bucket(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


def _upcast(dtype: torch.dtype) -> bool:
    # The interpreter runs on NumPy, which has no bfloat16: its tl.dot reads bf16 bits as garbage.
    # There, bf16 operands are widened to float32 first; on a GPU they stay bf16.
    return interpreting() and dtype == torch.bfloat16


def _precision(dtype: torch.dtype) -> str:
    # float32 inputs keep IEEE products so results match the references to float tolerance;
    # half types use the tensor cores' native path with float32 accumulation.
    return "ieee" if dtype == torch.float32 else "tf32"


def jagged_target_attention(
    candidate_offsets: Offsets,
    pools: list[AttentionPool[torch.Tensor]],
    heads: int,
    return_weights: bool = False,
) -> list[PooledAttention[torch.Tensor]]:
    """All pools of a jagged batch in one launch (two with ``return_weights``)."""
    check_jagged(candidate_offsets, pools)
    first = pools[0].queries
    total, dim = first.shape
    head_dim = dim // heads
    if head_dim < MIN_HEAD_DIM or head_dim & (head_dim - 1):
        raise ValueError(
            f"the Triton kernel needs a power-of-two head dim >= {MIN_HEAD_DIM}, got {head_dim}"
        )
    device, dtype = first.device, first.dtype
    if device.type != "cuda" and not interpreting():
        raise ValueError(
            f"the Triton kernel takes CUDA tensors (or CPU ones under TRITON_INTERPRET=1), "
            f"not {device.type} tensors"
        )
    requests = len(candidate_offsets) - 1
    queries = torch.stack([pool.queries for pool in pools]).contiguous()
    keys = torch.cat([pool.keys for pool in pools]).contiguous()
    values = torch.cat([pool.values for pool in pools]).contiguous()
    bases = np.cumsum([0] + [len(pool.keys) for pool in pools[:-1]])
    kv_offsets = np.stack([pool.offsets + base for pool, base in zip(pools, bases, strict=True)])
    out = torch.empty((len(pools), total, dim), dtype=dtype, device=device)
    lse = torch.empty((len(pools), max(total, 1), heads), dtype=torch.float32, device=device)
    per_request = np.diff(candidate_offsets)
    if requests and total:
        launch = _Launch(candidate_offsets, kv_offsets, device, requests, total, heads, head_dim)
        launch.attention(queries, keys, values, out, lse, dtype, return_weights, per_request)
    else:
        out.zero_()
    results = []
    w_offsets = [weight_offsets(candidate_offsets, pool.offsets) for pool in pools]
    weights = None
    if return_weights:
        weights = _weights(candidate_offsets, kv_offsets, w_offsets, queries, keys, lse, heads)
    for p in range(len(pools)):
        if weights is None:
            results.append(PooledAttention(out[p]))
        else:
            results.append(PooledAttention(out[p], weights[p], w_offsets[p]))
    return results


class _Launch:
    """Device-side offsets and grid of one jagged batch."""

    def __init__(
        self,
        candidate_offsets: Offsets,
        kv_offsets: np.ndarray,
        device: torch.device,
        requests: int,
        total: int,
        heads: int,
        head_dim: int,
    ) -> None:
        self.candidates = torch.as_tensor(candidate_offsets, dtype=torch.int64, device=device)
        self.kv = torch.as_tensor(kv_offsets, dtype=torch.int64, device=device).contiguous()
        self.kv_host = kv_offsets
        self.requests, self.total, self.heads, self.head_dim = requests, total, heads, head_dim

    def attention(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        out: torch.Tensor,
        lse: torch.Tensor,
        dtype: torch.dtype,
        store_lse: bool,
        per_request: np.ndarray,
    ) -> None:
        pools = queries.shape[0]
        longest_c = int(per_request.max())
        longest_l = int(np.diff(self.kv_host, axis=1).max())
        args = (
            queries, keys, values, out, lse, self.candidates, self.kv,
            self.requests, self.total,
            queries.stride(0), queries.stride(1), keys.stride(0), values.stride(0),
            out.stride(0), out.stride(1),
            1.0 / math.sqrt(self.head_dim), _bucket(longest_c), _bucket(longest_l),
        )  # fmt: skip
        meta = {
            "HEADS": self.heads,
            "HEAD_DIM": self.head_dim,
            "PRECISION": _precision(dtype),
            "STORE_LSE": store_lse,
            "UPCAST": _upcast(dtype),
        }

        def grid(blocks: dict[str, int]) -> tuple[int, int, int]:
            return (self.requests, triton.cdiv(longest_c, blocks["BLOCK_C"]), pools * self.heads)

        if interpreting() or queries.device.type != "cuda":
            _attention_kernel[grid(INTERPRETER_BLOCKS)](*args, **meta, **INTERPRETER_BLOCKS)
        else:
            _autotuned_attention[grid](*args, **meta)


def _weights(
    candidate_offsets: Offsets,
    kv_offsets: np.ndarray,
    w_offsets: list[Offsets],
    queries: torch.Tensor,
    keys: torch.Tensor,
    lse: torch.Tensor,
    heads: int,
) -> list[torch.Tensor]:
    """Head-averaged weights per pool, packed as in :class:`PooledAttention`."""
    device = queries.device
    sizes = [int(offsets[-1]) for offsets in w_offsets]
    starts = np.cumsum([0, *sizes[:-1]])
    packed = torch.zeros(max(sum(sizes), 1), dtype=torch.float32, device=device)
    requests = len(candidate_offsets) - 1
    longest_c = int(np.diff(candidate_offsets).max()) if requests else 0
    if requests and longest_c and sum(sizes):
        head_dim = queries.shape[2] // heads
        all_w = np.stack([o + s for o, s in zip(w_offsets, starts, strict=True)])
        blocks = INTERPRETER_BLOCKS
        grid = (requests, triton.cdiv(longest_c, blocks["BLOCK_C"]), queries.shape[0])
        _weights_kernel[grid](
            queries, keys, lse, packed,
            torch.as_tensor(candidate_offsets, dtype=torch.int64, device=device),
            torch.as_tensor(kv_offsets, dtype=torch.int64, device=device).contiguous(),
            torch.as_tensor(all_w, dtype=torch.int64, device=device).contiguous(),
            requests, queries.shape[1],
            queries.stride(0), queries.stride(1), keys.stride(0),
            1.0 / math.sqrt(head_dim),
            HEADS=heads, HEAD_DIM=head_dim, PRECISION=_precision(queries.dtype),
            UPCAST=_upcast(queries.dtype), **blocks,
        )  # fmt: skip
    return [packed[s : s + n] for s, n in zip(starts, sizes, strict=True)]
