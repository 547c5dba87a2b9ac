"""The CPU serving kernels against the NumPy reference: any shape, chunked or not, never NaN."""

from __future__ import annotations

import sys

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.target_attention.cpu import (
    HeadMajorBehaviours,
    NumpyAttention,
    OnnxAttention,
    attend,
    cpu_attention,
)
from kernels.target_attention.reference import target_attention

#: A pool and its candidates (none, or an empty pool, included), and the seed of their values.
POOL_SHAPES = {
    "candidates": st.integers(0, 70),
    "length": st.integers(0, 90),
    "heads": st.sampled_from([1, 2, 4]),
    "head_dim": st.sampled_from([3, 8, 16]),
    "seed": st.integers(0, 2**16),
}

Floats = npt.NDArray[np.float32]


def _pool(
    seed: int, candidates: int, length: int, dim: int, scale: float
) -> tuple[Floats, Floats, Floats]:
    """Random queries ``[candidates, dim]``, keys and values ``[length, dim]``; queries and keys
    times ``scale``, for sharper weights."""
    rng = np.random.default_rng(seed)
    queries = rng.standard_normal((candidates, dim)).astype(np.float32) * scale
    keys = rng.standard_normal((length, dim)).astype(np.float32) * scale
    return queries, keys, rng.standard_normal((length, dim)).astype(np.float32)


@settings(max_examples=60, deadline=None)
@given(**POOL_SHAPES, chunk_bytes=st.sampled_from([1, 4096, 1 << 20]))
def test_matches_the_reference(
    candidates: int, length: int, heads: int, head_dim: int, chunk_bytes: int, seed: int
) -> None:
    dim = heads * head_dim
    queries, keys, values = _pool(seed, candidates, length, dim, scale=2)
    behaviours = HeadMajorBehaviours.from_rows(keys, values, heads)
    pooled, weights = attend(queries, behaviours, return_weights=True, chunk_bytes=chunk_bytes)
    assert pooled.shape == (candidates, dim)
    assert weights is not None and weights.shape == (candidates, length)
    assert np.isfinite(pooled).all() and np.isfinite(weights).all()
    if length == 0:
        assert not pooled.any(), "an empty pool pools to zeros"
        return
    if candidates == 0:
        return
    expected, expected_weights = target_attention(
        queries[None], keys[None], values[None], np.ones((1, length), np.float32), heads, True
    )
    np.testing.assert_allclose(pooled, expected[0], rtol=1e-4, atol=1e-5)
    assert expected_weights is not None
    np.testing.assert_allclose(weights, expected_weights[0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)


@settings(max_examples=40, deadline=None)
@given(**POOL_SHAPES, explain=st.booleans(), chunk_bytes=st.sampled_from([1, 4096, 1 << 22]))
def test_the_onnxruntime_graph_matches_numpy(
    candidates: int,
    length: int,
    heads: int,
    head_dim: int,
    explain: bool,
    chunk_bytes: int,
    seed: int,
) -> None:
    """Whole or over chunks of candidates (1 byte: the smallest chunk; 4 MiB: the default,
    one call at these sizes)."""
    dim = heads * head_dim
    queries, keys, values = _pool(seed, candidates, length, dim, scale=3)
    behaviours = HeadMajorBehaviours.from_rows(keys, values, heads)
    pooled, weights = _onnx(heads, head_dim, chunk_bytes)(queries, behaviours, explain)
    expected, expected_weights = attend(queries, behaviours, explain)
    assert pooled.shape == (candidates, dim) and np.isfinite(pooled).all()
    np.testing.assert_allclose(pooled, expected, rtol=1e-4, atol=1e-5)
    if explain:
        assert weights is not None and expected_weights is not None
        np.testing.assert_allclose(weights, expected_weights, rtol=1e-4, atol=1e-6)
    else:
        assert weights is None


_SESSIONS: dict[tuple[int, int, int], OnnxAttention] = {}


def _onnx(heads: int, head_dim: int, chunk_bytes: int) -> OnnxAttention:
    key = (heads, head_dim, chunk_bytes)
    if key not in _SESSIONS:
        _SESSIONS[key] = OnnxAttention(heads, head_dim, chunk_bytes)
    return _SESSIONS[key]


def test_onnxruntime_is_the_default_and_numpy_the_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cpu_attention.cache_clear()  # one implementation per shape and process: start afresh
    assert isinstance(cpu_attention(4, 16), OnnxAttention)
    cpu_attention.cache_clear()
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if the onnx package were missing
    try:
        assert isinstance(cpu_attention(4, 16), NumpyAttention)
    finally:
        cpu_attention.cache_clear()
