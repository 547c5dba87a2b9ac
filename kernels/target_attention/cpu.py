"""Target attention for one request on the host: what the CPU serving path runs between its graphs.

The same op as :func:`kernels.target_attention.reference.target_attention` for one request with
no padding. Two implementations share one interface (:class:`CpuAttention`), chosen through the
dispatcher (:class:`kernels.target_attention.AttentionBackend`):

- :class:`OnnxAttention` (``onnx_cpu``, the CPU serving default): a three-node onnxruntime graph
  (MatMul, Softmax, MatMul, with the head layout done in the graph), built at start-up.
  onnxruntime's fused softmax is the point: its exponential is faster than NumPy's, and the
  exponential is most of the work. A large request runs the graph over chunks of its
  candidates whose logits fit in a core's cache (:data:`ONNX_CHUNK_BYTES`): a whole W2 request
  writes 32 MB of logits and reads them back twice, and between requests that memory goes cold,
  so the unchunked graph paid main-memory traffic on every request.
- :func:`attend` on NumPy (``numpy``), used where the ``onnx`` package is missing.

Both take keys and values laid out head-major once per user (:class:`HeadMajorBehaviours`), so
a cached user pays the transposes once; a jagged request has no padding, so there is no mask;
an empty pool pools to zeros. The NumPy version also folds ``1/sqrt(head_dim)`` into the
queries, divides the pooled values ``[C, hd]`` instead of the weights ``[C, L]``, and goes
through the candidates in chunks whose logits fit in a core's L2 cache. Both release the GIL in
their heavy steps, so several scoring threads run in parallel. :func:`jagged_target_attention`
runs either over a packed jagged batch, request by request (the dispatcher's ``onnx_cpu``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numpy as np
import numpy.typing as npt

from kernels.target_attention.jagged import (
    AttentionPool,
    Offsets,
    PooledAttention,
    check_jagged,
    weight_offsets,
)

FloatArray = npt.NDArray[np.float32]

log = logging.getLogger(__name__)

_OPSET = 18  # ReduceMean takes its axes as an input from opset 18
_IR_VERSION = 9

#: Bytes of logits per chunk of candidates: half the L2 cache of one core of a typical server.
DEFAULT_CHUNK_BYTES = 512 * 1024
#: Bytes of logits per onnxruntime call: a few MiB keep a chunk's logits in a core's cache
#: while each call's fixed cost (about 30 us) stays small against its work.
ONNX_CHUNK_BYTES = 4 * 1024 * 1024
_MIN_CHUNK = 8


@dataclass(frozen=True, slots=True)
class HeadMajorBehaviours:
    """One pool's keys ``[H, hd, L]`` and values ``[H, L, hd]``, contiguous; L may be 0."""

    keys: FloatArray
    values: FloatArray

    @classmethod
    def from_rows(cls, keys: FloatArray, values: FloatArray, heads: int) -> HeadMajorBehaviours:
        """From row-major ``[L, d]`` keys and values (what the user encoder emits)."""
        length, dim = keys.shape
        head_dim = dim // heads
        return cls(
            np.ascontiguousarray(
                keys.reshape(length, heads, head_dim).transpose(1, 2, 0), np.float32
            ),
            np.ascontiguousarray(
                values.reshape(length, heads, head_dim).transpose(1, 0, 2), np.float32
            ),
        )

    @property
    def length(self) -> int:
        return int(self.keys.shape[2])

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.values.nbytes)


def attend(
    queries: FloatArray,
    behaviours: HeadMajorBehaviours,
    return_weights: bool = False,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> tuple[FloatArray, FloatArray | None]:
    """Pooled values ``[C, d]`` for queries ``[C, d]``, and the head-averaged weights ``[C, L]``
    when asked. An empty pool pools to zeros (weights ``[C, 0]``)."""
    candidates, dim = queries.shape
    heads, head_dim, length = behaviours.keys.shape
    pooled = np.zeros((candidates, heads, head_dim), np.float32)
    weights = np.zeros((candidates, length), np.float32) if return_weights else None
    if candidates == 0 or length == 0:
        return pooled.reshape(candidates, dim), weights
    scaled = queries.reshape(candidates, heads, head_dim).transpose(1, 0, 2) * np.float32(
        1.0 / np.sqrt(head_dim)
    )
    chunk = max(_MIN_CHUNK, chunk_bytes // (heads * length * 4))
    buffer = np.empty((heads, min(chunk, candidates), length), np.float32)
    for start in range(0, candidates, chunk):
        stop = min(candidates, start + chunk)
        logits = buffer[:, : stop - start]
        np.matmul(scaled[:, start:stop], behaviours.keys, out=logits)
        np.subtract(logits, logits.max(axis=-1, keepdims=True), out=logits)
        np.exp(logits, out=logits)
        totals = logits.sum(axis=-1, keepdims=True)
        block = np.matmul(logits, behaviours.values)
        block /= totals
        pooled[start:stop] = block.transpose(1, 0, 2)
        if weights is not None:
            logits /= totals
            weights[start:stop] = logits.mean(axis=0)
    return pooled.reshape(candidates, dim), weights


class CpuAttention(Protocol):
    def __call__(
        self, queries: FloatArray, behaviours: HeadMajorBehaviours, return_weights: bool = False
    ) -> tuple[FloatArray, FloatArray | None]:
        """Pooled ``[C, d]`` and, when asked, head-averaged weights ``[C, L]``."""


class NumpyAttention:
    """:func:`attend` behind the :class:`CpuAttention` interface."""

    def __call__(
        self, queries: FloatArray, behaviours: HeadMajorBehaviours, return_weights: bool = False
    ) -> tuple[FloatArray, FloatArray | None]:
        return attend(queries, behaviours, return_weights)


class OnnxAttention:
    """Target attention as an onnxruntime graph over row-major queries and head-major keys and
    values; one session for pooling alone, one that also returns the head-averaged weights."""

    def __init__(self, heads: int, head_dim: int, chunk_bytes: int = ONNX_CHUNK_BYTES) -> None:
        import onnxruntime as ort

        self.heads = heads
        self.head_dim = head_dim
        self.chunk_bytes = chunk_bytes
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self._pool = ort.InferenceSession(
            attention_graph(heads, head_dim, weights=False),
            options,
            providers=["CPUExecutionProvider"],
        )
        self._pool_and_weights = ort.InferenceSession(
            attention_graph(heads, head_dim, weights=True),
            options,
            providers=["CPUExecutionProvider"],
        )

    def rows_per_call(self, length: int) -> int:
        """Candidates per onnxruntime call against a pool of ``length`` behaviours."""
        return max(_MIN_CHUNK, self.chunk_bytes // (4 * self.heads * max(1, length)))

    def __call__(
        self, queries: FloatArray, behaviours: HeadMajorBehaviours, return_weights: bool = False
    ) -> tuple[FloatArray, FloatArray | None]:
        candidates, length = len(queries), behaviours.length
        if candidates == 0 or length == 0:
            return attend(queries, behaviours, return_weights)
        queries = np.ascontiguousarray(queries, np.float32)
        session = self._pool_and_weights if return_weights else self._pool
        feeds = {"queries": queries, "keys": behaviours.keys, "values": behaviours.values}
        rows = self.rows_per_call(length)
        if rows >= candidates:
            outputs = session.run(None, feeds)
            return outputs[0], outputs[1] if return_weights else None
        pooled = np.empty((candidates, self.heads * self.head_dim), np.float32)
        weights = np.empty((candidates, length), np.float32) if return_weights else None
        for start in range(0, candidates, rows):
            part = slice(start, start + rows)
            feeds["queries"] = queries[part]
            outputs = session.run(None, feeds)
            pooled[part] = outputs[0]
            if weights is not None:
                weights[part] = outputs[1]
        return pooled, weights


def attention_graph(heads: int, head_dim: int, weights: bool) -> bytes:
    """The serialized ONNX graph: queries ``[C, d]``, keys ``[H, hd, L]``, values ``[H, L, hd]``
    -> pooled ``[C, d]`` (and head-averaged weights ``[C, L]``)."""
    from onnx import TensorProto, helper, numpy_helper

    dim = heads * head_dim
    constants = [
        numpy_helper.from_array(np.asarray([-1, heads, head_dim], np.int64), "split_heads"),
        numpy_helper.from_array(np.asarray([-1, dim], np.int64), "join_heads"),
        numpy_helper.from_array(np.asarray(1.0 / np.sqrt(head_dim), np.float32), "scale"),
        numpy_helper.from_array(np.asarray([0], np.int64), "head_axis"),
    ]
    nodes = [
        helper.make_node("Reshape", ["queries", "split_heads"], ["q_split"]),
        helper.make_node("Transpose", ["q_split"], ["q_heads"], perm=[1, 0, 2]),
        helper.make_node("Mul", ["q_heads", "scale"], ["q_scaled"]),
        helper.make_node("MatMul", ["q_scaled", "keys"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["attention"], axis=-1),
        helper.make_node("MatMul", ["attention", "values"], ["pooled_heads"]),
        helper.make_node("Transpose", ["pooled_heads"], ["pooled_rows"], perm=[1, 0, 2]),
        helper.make_node("Reshape", ["pooled_rows", "join_heads"], ["pooled"]),
    ]
    outputs = [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["C", dim])]
    if weights:
        nodes.append(
            helper.make_node("ReduceMean", ["attention", "head_axis"], ["weights"], keepdims=0)
        )
        outputs.append(helper.make_tensor_value_info("weights", TensorProto.FLOAT, ["C", "L"]))
    graph = helper.make_graph(
        nodes,
        "target_attention",
        [
            helper.make_tensor_value_info("queries", TensorProto.FLOAT, ["C", dim]),
            helper.make_tensor_value_info("keys", TensorProto.FLOAT, [heads, head_dim, "L"]),
            helper.make_tensor_value_info("values", TensorProto.FLOAT, [heads, "L", head_dim]),
        ],
        outputs,
        initializer=constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)])
    model.ir_version = _IR_VERSION
    return bytes(model.SerializeToString())


@lru_cache(maxsize=16)
def cpu_attention(heads: int, head_dim: int, chunk_bytes: int = ONNX_CHUNK_BYTES) -> CpuAttention:
    """The fastest CPU implementation available: onnxruntime when the ``onnx`` package is there
    to build its graph (at most ``chunk_bytes`` of logits per call), else NumPy (said once in
    the log). One per shape and process: the sessions are stateless and safe to share between
    threads and bundles."""
    try:
        return OnnxAttention(heads, head_dim, chunk_bytes)
    except ImportError as error:
        log.warning("target attention on NumPy (%s): install onnx for the faster path", error)
        return NumpyAttention()


def jagged_target_attention(
    candidate_offsets: Offsets,
    pools: list[AttentionPool[FloatArray]],
    heads: int,
    return_weights: bool = False,
    implementation: Callable[[int, int], CpuAttention] = cpu_attention,
) -> list[PooledAttention[FloatArray]]:
    """The jagged op on the host, request by request through ``implementation(heads,
    head_dim)``; packed as :class:`PooledAttention` like every other backend."""
    check_jagged(candidate_offsets, pools)
    results = []
    for pool in pools:
        total, dim = pool.queries.shape
        attention = implementation(heads, dim // heads)
        pooled = np.zeros((total, dim), np.float32)
        blocks: list[FloatArray] = []
        for r in range(len(candidate_offsets) - 1):
            rows = slice(int(candidate_offsets[r]), int(candidate_offsets[r + 1]))
            kv = slice(int(pool.offsets[r]), int(pool.offsets[r + 1]))
            if rows.stop == rows.start:
                continue
            behaviours = HeadMajorBehaviours.from_rows(pool.keys[kv], pool.values[kv], heads)
            pooled[rows], weights = attention(pool.queries[rows], behaviours, return_weights)
            if weights is not None:
                blocks.append(weights.reshape(-1))
        if not return_weights:
            results.append(PooledAttention(pooled))
            continue
        packed = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
        offsets = weight_offsets(candidate_offsets, pool.offsets)
        results.append(PooledAttention(pooled, packed, offsets))
    return results
