"""Tiny, deterministic bundles for tests: hand-built ONNX graphs honouring the graph contract.

The encoders are identities (keys = values = behaviour vectors, queries = candidate vectors) and
the scorer is ``sigmoid(sum(c * (real_pooled + generated_pooled)))``, so a candidate close to
what the user did scores high. The full graph computes the same with the attention inside.
Item ``i<n>`` is ``2 * e_(n mod d)`` for ``n < d`` and ``-2 * e_(n mod d)`` after that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from service.contracts import graphs
from service.contracts.bundle_root import write_current
from service.contracts.features import EVENT_TYPES, TIME_GAP_BUCKETS
from service.contracts.manifest import (
    MANIFEST_FILE,
    BundleManifest,
    FeatureSchema,
    GeneratorInfo,
    ItemTable,
    MaxLengths,
    ModelDimensions,
    file_digest,
)

OPSET = 18
FLOAT, INT64 = TensorProto.FLOAT, TensorProto.INT64


def item_vectors(rows: int, dim: int) -> np.ndarray:
    vectors = np.zeros((rows, dim), np.float32)
    for n in range(rows):
        vectors[n, n % dim] = 2.0 if n < dim else -2.0
    return vectors


def _value(name: str, elem: int, shape: list[str | int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def _model(nodes: list, inputs: list, outputs: list, inits: list | None = None) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits or [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def _const(name: str, values: list[int] | list[float], dtype: type = np.int64) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype), name)


def _user_encoder(dim: int) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Identity", [graphs.SEQUENCE_VECTORS], [graphs.REAL_KEYS]),
        helper.make_node("Identity", [graphs.SEQUENCE_VECTORS], [graphs.REAL_VALUES]),
        helper.make_node("Identity", [graphs.GENERATED_VECTORS], [graphs.GENERATED_KEYS]),
        helper.make_node("Identity", [graphs.GENERATED_VECTORS], [graphs.GENERATED_VALUES]),
    ]
    inputs = [
        _value(graphs.SEQUENCE_VECTORS, FLOAT, ["B", "L", dim]),
        _value(graphs.SEQUENCE_EVENTS, INT64, ["B", "L"]),
        _value(graphs.SEQUENCE_GAPS, INT64, ["B", "L"]),
        _value(graphs.GENERATED_VECTORS, FLOAT, ["B", "K", dim]),
    ]
    outputs = [
        _value(n, FLOAT, ["B", axis, dim])
        for n, axis in (
            (graphs.REAL_KEYS, "L"),
            (graphs.REAL_VALUES, "L"),
            (graphs.GENERATED_KEYS, "K"),
            (graphs.GENERATED_VALUES, "K"),
        )
    ]
    return _model(nodes, inputs, outputs)


def _candidate_encoder(dim: int) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Identity", [graphs.CANDIDATE_VECTORS], [graphs.REAL_QUERIES]),
        helper.make_node("Identity", [graphs.CANDIDATE_VECTORS], [graphs.GENERATED_QUERIES]),
    ]
    return _model(
        nodes,
        [_value(graphs.CANDIDATE_VECTORS, FLOAT, ["B", "C", dim])],
        [
            _value(graphs.REAL_QUERIES, FLOAT, ["B", "C", dim]),
            _value(graphs.GENERATED_QUERIES, FLOAT, ["B", "C", dim]),
        ],
    )


def _scorer_nodes(real: str, generated: str) -> tuple[list, list]:
    nodes = [
        helper.make_node("Add", [real, generated], ["pooled_sum"]),
        helper.make_node("Mul", [graphs.CANDIDATE_VECTORS, "pooled_sum"], ["products"]),
        helper.make_node("ReduceSum", ["products", "last_axis"], ["logits"], keepdims=0),
        helper.make_node("Sigmoid", ["logits"], [graphs.SCORES]),
    ]
    return nodes, [_const("last_axis", [-1])]


def _scorer(dim: int) -> onnx.ModelProto:
    nodes, inits = _scorer_nodes(graphs.REAL_POOLED, graphs.GENERATED_POOLED)
    inputs = [
        _value(n, FLOAT, ["B", "C", dim])
        for n in (graphs.CANDIDATE_VECTORS, graphs.REAL_POOLED, graphs.GENERATED_POOLED)
    ]
    return _model(nodes, inputs, [_value(graphs.SCORES, FLOAT, ["B", "C"])], inits)


def _attention(prefix: str, kv: str, mask: str, heads: int, dim: int) -> tuple[list, list]:
    """Masked multi-head target attention of the candidates over ``kv``, like the reference."""
    p = prefix
    n = helper.make_node
    nodes = [
        n("Reshape", [graphs.CANDIDATE_VECTORS, "split_shape"], [f"{p}_q4"]),
        n("Transpose", [f"{p}_q4"], [f"{p}_q"], perm=[0, 2, 1, 3]),
        n("Reshape", [kv, "split_shape"], [f"{p}_kv4"]),
        n("Transpose", [f"{p}_kv4"], [f"{p}_k"], perm=[0, 2, 3, 1]),
        n("Transpose", [f"{p}_kv4"], [f"{p}_v"], perm=[0, 2, 1, 3]),
        n("MatMul", [f"{p}_q", f"{p}_k"], [f"{p}_raw"]),
        n("Mul", [f"{p}_raw", "scale"], [f"{p}_logits"]),
        n("Unsqueeze", [mask, "head_axes"], [f"{p}_m"]),
        n("Greater", [f"{p}_m", "zero"], [f"{p}_valid"]),
        n("Where", [f"{p}_valid", f"{p}_logits", "neg_inf"], [f"{p}_masked"]),
        n("ReduceMax", [f"{p}_masked", "last_axis"], [f"{p}_max"], keepdims=1),
        n("Sub", [f"{p}_masked", f"{p}_max"], [f"{p}_shifted"]),
        n("Exp", [f"{p}_shifted"], [f"{p}_exp"]),
        n("Mul", [f"{p}_exp", f"{p}_m"], [f"{p}_kept"]),
        n("ReduceSum", [f"{p}_kept", "last_axis"], [f"{p}_sum"], keepdims=1),
        n("Max", [f"{p}_sum", "tiny"], [f"{p}_norm"]),
        n("Div", [f"{p}_kept", f"{p}_norm"], [f"{p}_w"]),
        n("MatMul", [f"{p}_w", f"{p}_v"], [f"{p}_o4"]),
        n("Transpose", [f"{p}_o4"], [f"{p}_o"], perm=[0, 2, 1, 3]),
        n("Reshape", [f"{p}_o", "merge_shape"], [f"{p}_pooled"]),
    ]
    inits = [
        _const("split_shape", [0, 0, heads, dim // heads]),
        _const("merge_shape", [0, 0, dim]),
        _const("head_axes", [1, 2]),
        _const("scale", [1.0 / np.sqrt(dim // heads)], np.float32),
        _const("zero", [0.0], np.float32),
        _const("neg_inf", [-1e30], np.float32),
        _const("tiny", [1e-30], np.float32),
    ]
    return nodes, inits


def _full(dim: int, heads: int) -> onnx.ModelProto:
    real_nodes, inits = _attention(
        "real", graphs.SEQUENCE_VECTORS, graphs.SEQUENCE_MASK, heads, dim
    )
    gen_nodes, _ = _attention("gen", graphs.GENERATED_VECTORS, graphs.GENERATED_MASK, heads, dim)
    score_nodes, score_inits = _scorer_nodes("real_pooled", "gen_pooled")
    inputs = [
        _value(graphs.CANDIDATE_VECTORS, FLOAT, ["B", "C", dim]),
        _value(graphs.SEQUENCE_VECTORS, FLOAT, ["B", "L", dim]),
        _value(graphs.SEQUENCE_EVENTS, INT64, ["B", "L"]),
        _value(graphs.SEQUENCE_GAPS, INT64, ["B", "L"]),
        _value(graphs.GENERATED_VECTORS, FLOAT, ["B", "K", dim]),
        _value(graphs.SEQUENCE_MASK, FLOAT, ["B", "L"]),
        _value(graphs.GENERATED_MASK, FLOAT, ["B", "K"]),
    ]
    return _model(
        real_nodes + gen_nodes + score_nodes,
        inputs,
        [_value(graphs.SCORES, FLOAT, ["B", "C"])],
        inits + score_inits,
    )


def build_bundle(
    root: Path,
    version: str = "test-1",
    rows: int = 16,
    dim: int = 8,
    heads: int = 2,
    max_sequence: int = 6,
    max_generated: int = 2,
) -> Path:
    """Write ``root/<version>/`` with graphs, item table and a checksummed manifest."""
    bundle_dir = root / version
    bundle_dir.mkdir(parents=True, exist_ok=True)
    models = {
        graphs.USER_ENCODER: _user_encoder(dim),
        graphs.CANDIDATE_ENCODER: _candidate_encoder(dim),
        graphs.SCORER: _scorer(dim),
        graphs.FULL: _full(dim, heads),
    }
    for name, model in models.items():
        onnx.save(model, bundle_dir / f"{name}.onnx")
    np.save(bundle_dir / "item_ids.npy", np.asarray([f"i{n}" for n in range(rows)], np.str_))
    np.save(bundle_dir / "item_vectors.npy", item_vectors(rows, dim).astype(np.float16))
    files = [f"{name}.onnx" for name in models] + ["item_ids.npy", "item_vectors.npy"]
    manifest = BundleManifest(
        version=version,
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        dimensions=ModelDimensions(item_dim=dim, heads=heads, semantic_dim=0),
        max_lengths=MaxLengths(sequence=max_sequence, generated=max_generated),
        features=FeatureSchema(event_types=list(EVENT_TYPES), time_gap_buckets=TIME_GAP_BUCKETS),
        graphs={name: f"{name}.onnx" for name in models},
        item_table=ItemTable(
            ids_file="item_ids.npy",
            vectors_file="item_vectors.npy",
            dtype="float16",
            rows=rows,
            default_vector=[0.0] * dim,
        ),
        generator=GeneratorInfo(version="gbr-test"),
        files={name: file_digest(bundle_dir / name) for name in files},
    )
    (bundle_dir / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2))
    write_current(root, version)
    return bundle_dir


@dataclass(frozen=True)
class SmallBundle:
    """A bundle root and the embedded users to serve with it."""

    bundles: Path
    users: Path

    def service_env(self) -> dict[str, str]:
        return {
            "REASEQ_BUNDLE_ROOT": str(self.bundles),
            "REASEQ_EMBEDDED_USERS_PATH": str(self.users),
            "REASEQ_STORE": "embedded",
            "REASEQ_ACCESS_LOG": "false",
        }
