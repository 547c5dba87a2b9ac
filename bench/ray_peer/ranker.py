"""The peer's scoring, without Ray: the bundle's one fused ``full`` graph over padded batches.

What a team writes around an exported graph: the item table and the users snapshot in memory,
each request turned into the graph's input rows (the shared feature schema of
:mod:`service.contracts.features` for event ids and time-gap buckets), and a batch of requests
padded to its longest candidate list, sequence and generated block and run in one call. Padded
behaviours are masked out; padded candidates are scored and dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from service.bundles.loaded import ItemTable, load_item_table
from service.contracts import graphs
from service.contracts.features import behaviour_features
from service.contracts.manifest import read_manifest
from service.stores.snapshot import UserSnapshot

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class RankInputs:
    """One request's rows of the full graph's inputs: ``C`` candidates, ``L`` real and ``K``
    generated behaviours. An empty pool is one masked slot, as the graph contract asks."""

    candidates: FloatArray  # [C, d]
    sequence: FloatArray  # [L, d]
    events: IntArray  # [L]
    gaps: IntArray  # [L]
    sequence_mask: FloatArray  # [L]
    generated: FloatArray  # [K, d]
    generated_mask: FloatArray  # [K]


def _padding_pool(dim: int) -> tuple[FloatArray, FloatArray]:
    return np.zeros((1, dim), np.float32), np.zeros(1, np.float32)


def _padded(rows: Sequence[np.ndarray], length: int) -> np.ndarray:
    """``rows`` stacked along a new batch axis, each zero-padded after its rows to ``length``
    (mask 0, event id 0: the padding id of :mod:`service.contracts.features`)."""
    first = rows[0]
    out = np.zeros((len(rows), length, *first.shape[1:]), first.dtype)
    for b, row in enumerate(rows):
        out[b, : len(row)] = row
    return out


def full_graph_feeds(batch: Sequence[RankInputs]) -> dict[str, np.ndarray]:
    """The full graph's feeds for a batch of requests, padded to the longest of each axis."""
    c = max(len(r.candidates) for r in batch)
    length = max(len(r.sequence) for r in batch)
    k = max(len(r.generated) for r in batch)
    return {
        graphs.CANDIDATE_VECTORS: _padded([r.candidates for r in batch], c),
        graphs.SEQUENCE_VECTORS: _padded([r.sequence for r in batch], length),
        graphs.SEQUENCE_EVENTS: _padded([r.events for r in batch], length),
        graphs.SEQUENCE_GAPS: _padded([r.gaps for r in batch], length),
        graphs.SEQUENCE_MASK: _padded([r.sequence_mask for r in batch], length),
        graphs.GENERATED_VECTORS: _padded([r.generated for r in batch], k),
        graphs.GENERATED_MASK: _padded([r.generated_mask for r in batch], k),
    }


def top_items(
    candidates: Sequence[str], scores: FloatArray, top_k: int | None
) -> list[dict[str, Any]]:
    """The ``top_k`` best candidates (all without it), best first, ties in request order."""
    rows = np.argsort(-scores, kind="stable")[:top_k]
    return [{"item_id": candidates[r], "score": float(scores[r])} for r in rows]


class FullGraphRanker:
    """The bundle's full graph, item table and the users snapshot, held in memory."""

    def __init__(self, bundle_dir: Path, users_path: Path, intra_op_threads: int = 1) -> None:
        manifest = read_manifest(bundle_dir)
        self.items: ItemTable = load_item_table(bundle_dir, manifest)
        self.users = UserSnapshot.load(users_path)
        self.max_sequence = manifest.max_lengths.sequence
        self.max_generated = manifest.max_lengths.generated
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            str(bundle_dir / manifest.graphs[graphs.FULL]),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )

    def inputs(self, user_id: str, candidates: Sequence[str], now: int) -> RankInputs:
        """A request's input rows, behaviours as of ``now`` (Unix seconds)."""
        candidate_vectors, _ = self.items.lookup(candidates)
        sequence, events, gaps, sequence_mask = self._sequence(user_id, now)
        generated, generated_mask = self._generated(user_id)
        return RankInputs(
            candidate_vectors, sequence, events, gaps, sequence_mask, generated, generated_mask
        )

    def _sequence(
        self, user_id: str, now: int
    ) -> tuple[FloatArray, IntArray, IntArray, FloatArray]:
        """The newest ``max_sequence`` behaviours, oldest first; unknown items get the table's
        default vector."""
        stored = self.users.sequence(user_id)
        if stored is None or len(stored) == 0:
            vectors, mask = _padding_pool(self.items.dim)
            zeros = np.zeros(1, np.int64)
            return vectors, zeros, zeros, mask
        order = np.argsort(stored.timestamps, kind="stable")[-self.max_sequence :]
        vectors, _ = self.items.lookup([stored.item_ids[i] for i in order])
        features = behaviour_features(now, stored.timestamps[order], stored.events[order])
        return vectors, features.events, features.gaps, np.ones(len(order), np.float32)

    def _generated(self, user_id: str) -> tuple[FloatArray, FloatArray]:
        """The first ``max_generated`` generated behaviours (float32 from the snapshot's
        float16); their event ids are padding and their gaps 0, which the graph ignores."""
        generated = self.users.generated(user_id)
        if generated is None or self.max_generated == 0:
            return _padding_pool(self.items.dim)
        vectors = np.ascontiguousarray(generated.vectors[: self.max_generated], np.float32)
        return vectors, np.ones(len(vectors), np.float32)

    def score_batch(self, batch: Sequence[RankInputs]) -> list[FloatArray]:
        """Scores ``[C_r]`` of every request of ``batch``, in order, in one run of the graph."""
        scores = self._session.run([graphs.SCORES], full_graph_feeds(batch))[0]
        return [scores[b, : len(r.candidates)] for b, r in enumerate(batch)]
