"""One parity body for every backend of jagged target attention, over shapes drawn by
hypothesis (empty batches, empty pools and single candidates included)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernels.target_attention import (
    AttentionBackend,
    AttentionPool,
    jagged_target_attention,
    offsets_from_lengths,
    target_attention,
)
from kernels.target_attention.jagged import top_weights

torch = pytest.importorskip("torch")
#: Tensors go to the GPU when there is one (the Triton kernel then runs compiled, not interpreted).
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class JaggedCase:
    heads: int
    head_dim: int
    candidates: list[int]
    real: list[int]
    generated: list[int]
    seed: int

    @property
    def dim(self) -> int:
        return self.heads * self.head_dim

    def arrays(self) -> tuple[np.ndarray, list[AttentionPool[np.ndarray]]]:
        rng = np.random.default_rng(self.seed)
        total = sum(self.candidates)

        def pool(lengths: list[int]) -> AttentionPool[np.ndarray]:
            rows = sum(lengths)
            return AttentionPool(
                rng.standard_normal((total, self.dim), dtype=np.float32),
                rng.standard_normal((rows, self.dim), dtype=np.float32),
                rng.standard_normal((rows, self.dim), dtype=np.float32),
                offsets_from_lengths(lengths),
            )

        return offsets_from_lengths(self.candidates), [pool(self.real), pool(self.generated)]


@st.composite
def jagged_cases(draw: st.DrawFn, max_requests: int = 4, max_len: int = 40) -> JaggedCase:
    requests = draw(st.integers(0, max_requests))
    lengths = st.lists(st.integers(0, max_len), min_size=requests, max_size=requests)
    return JaggedCase(
        heads=draw(st.sampled_from([1, 2, 4])),
        head_dim=16,
        candidates=draw(st.lists(st.integers(0, 20), min_size=requests, max_size=requests)),
        real=draw(lengths),
        generated=draw(st.lists(st.integers(0, 6), min_size=requests, max_size=requests)),
        seed=draw(st.integers(0, 2**16)),
    )


def as_torch(pools: list[AttentionPool[np.ndarray]], dtype: object) -> list[AttentionPool[object]]:
    return [
        AttentionPool(
            torch.from_numpy(p.queries).to(DEVICE, dtype),
            torch.from_numpy(p.keys).to(DEVICE, dtype),
            torch.from_numpy(p.values).to(DEVICE, dtype),
            p.offsets,
        )
        for p in pools
    ]


def numpy_of(x: object) -> np.ndarray:
    return x.float().cpu().numpy() if hasattr(x, "numpy") else np.asarray(x)  # type: ignore[union-attr]


def check_against_numpy(case: JaggedCase, backend: AttentionBackend, dtype: object, tol: float):
    """The shared body: ``backend`` on ``dtype`` inputs matches the float32 NumPy reference."""
    offsets, pools = case.arrays()
    expected = jagged_target_attention(offsets, pools, case.heads, True, AttentionBackend.NUMPY)
    inputs = pools if backend.on_host else as_torch(pools, dtype)
    found = jagged_target_attention(offsets, inputs, case.heads, True, backend)
    for want, got in zip(expected, found, strict=True):
        np.testing.assert_allclose(numpy_of(got.pooled), want.pooled, atol=tol, rtol=tol)
        assert not np.isnan(numpy_of(got.pooled)).any()
        np.testing.assert_array_equal(got.weight_offsets, want.weight_offsets)
        np.testing.assert_allclose(numpy_of(got.weights)[: len(want.weights)], want.weights,
                                   atol=tol, rtol=tol)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(jagged_cases())
def test_jagged_numpy_matches_padded_reference(case: JaggedCase) -> None:
    offsets, pools = case.arrays()
    found = jagged_target_attention(offsets, pools, case.heads)
    for pool, result in zip(pools, found, strict=True):
        for r in range(len(case.candidates)):
            rows = slice(offsets[r], offsets[r + 1])
            kv = slice(pool.offsets[r], pool.offsets[r + 1])
            length = kv.stop - kv.start
            keys = pool.keys[kv] if length else np.zeros((1, case.dim), np.float32)
            values = pool.values[kv] if length else np.zeros((1, case.dim), np.float32)
            mask = np.ones((1, max(length, 1)), np.float32) * (length > 0)
            padded, _ = target_attention(
                pool.queries[None, rows], keys[None], values[None], mask, case.heads
            )
            np.testing.assert_allclose(result.pooled[rows], padded[0], atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(jagged_cases())
def test_pytorch_reference_matches_numpy(case: JaggedCase) -> None:
    check_against_numpy(case, AttentionBackend.TORCH, torch.float32, 1e-5)


@settings(max_examples=40, deadline=None)
@given(jagged_cases())
def test_the_cpu_serving_backend_matches_numpy(case: JaggedCase) -> None:
    check_against_numpy(case, AttentionBackend.ONNX_CPU, None, 1e-5)


TRITON_TOLERANCE = {"float32": 1e-5, "float16": 3e-3, "bfloat16": 3e-2}


@pytest.mark.parametrize("dtype", sorted(TRITON_TOLERANCE))
@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=jagged_cases(max_requests=3, max_len=24))
def test_triton_matches_numpy(case: JaggedCase, dtype: str) -> None:
    pytest.importorskip("triton")
    check_against_numpy(
        case, AttentionBackend.TRITON, getattr(torch, dtype), TRITON_TOLERANCE[dtype]
    )


@pytest.mark.parametrize(
    "case",
    [
        JaggedCase(4, 16, [], [], [], 0),  # empty batch
        JaggedCase(4, 16, [1], [0], [0], 1),  # one candidate, no behaviours at all
        JaggedCase(2, 16, [5, 0, 3], [17, 9, 0], [0, 4, 2], 2),  # empty pools and requests
        JaggedCase(4, 32, [33], [70], [16], 3),  # several blocks of candidates and keys
    ],
)
def test_triton_edge_shapes(case: JaggedCase) -> None:
    pytest.importorskip("triton")
    check_against_numpy(case, AttentionBackend.TRITON, torch.float32, 1e-5)


def test_empty_pool_pools_to_zeros_and_weights_sum_to_one() -> None:
    case = JaggedCase(4, 16, [3, 2], [0, 5], [2, 0], 4)
    offsets, pools = case.arrays()
    real, generated = jagged_target_attention(offsets, pools, case.heads, return_weights=True)
    assert np.all(real.pooled[:3] == 0) and np.all(generated.pooled[3:] == 0)
    assert real.weights is not None and generated.weights is not None
    np.testing.assert_allclose(real.weights.reshape(2, 5).sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(generated.weights.reshape(3, 2).sum(axis=1), 1.0, atol=1e-6)


def test_top_weights_names_the_heaviest_behaviours() -> None:
    weights = np.array([0.1, 0.7, 0.2, 0.5, 0.25, 0.25], np.float32)  # two candidates, L=3
    found = top_weights(weights, np.array([0, 2]), np.array([0, 3]), k=2)
    assert [rows.tolist() for rows, _ in found] == [[1, 2], [0, 1]]
    np.testing.assert_allclose(found[0][1], [0.7, 0.2])


def test_bad_offsets_are_refused() -> None:
    _, pools = JaggedCase(1, 16, [2], [3], [1], 5).arrays()
    with pytest.raises(ValueError, match="offsets"):
        jagged_target_attention(np.array([1, 2]), pools, 1)


def test_the_numpy_path_does_not_import_torch() -> None:
    code = (
        "import sys, numpy as np\n"
        "from kernels.target_attention import AttentionPool, jagged_target_attention\n"
        "pool = AttentionPool(np.ones((2, 16), np.float32), np.ones((3, 16), np.float32),\n"
        "                     np.ones((3, 16), np.float32), np.array([0, 3]))\n"
        "jagged_target_attention(np.array([0, 2]), [pool], 1)\n"
        "assert 'torch' not in sys.modules and 'triton' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
