"""The CPU serving kernel against the NumPy reference: any shape, chunked or not, never NaN."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kernels.target_attention.cpu import HeadMajorBehaviours, attend
from kernels.target_attention.reference import target_attention


@settings(max_examples=60, deadline=None)
@given(
    candidates=st.integers(0, 70),
    length=st.integers(0, 90),
    heads=st.sampled_from([1, 2, 4]),
    head_dim=st.sampled_from([3, 8, 16]),
    chunk_bytes=st.sampled_from([1, 4096, 1 << 20]),
    seed=st.integers(0, 2**16),
)
def test_matches_the_reference(
    candidates: int, length: int, heads: int, head_dim: int, chunk_bytes: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    dim = heads * head_dim
    queries = rng.standard_normal((candidates, dim)).astype(np.float32) * 2
    keys = rng.standard_normal((length, dim)).astype(np.float32) * 2
    values = rng.standard_normal((length, dim)).astype(np.float32)
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
