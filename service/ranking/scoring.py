"""Run the bundle's graphs on a batch of requests on the host: split (encoders, attention,
scorer) or full. The device path (``service.device.runner``) scores the same requests with the
same results behind the same :class:`ScoringRunner` interface.

Split mode packs the batch jaggedly. The candidate encoder and the scorer work row by row (a
candidate), so every request's rows go through each graph in one call with batch dimension 1 and
no padding; the attention runs per request, over that request's own behaviours, in the host
backend of the dispatcher (``onnx_cpu`` or ``numpy``). The user encoder is packed the same way
when it too works behaviour by behaviour; with self-attention layers (``user_layers`` in the
manifest) each user gets their own row of a padded batch instead, padding after the behaviours,
which causal attention never lets reach them. Users found in the :class:`UserStateCache` skip the
user encoder.

Full mode runs the single full graph request by request (its batch axis would need padding).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal, Protocol

import numpy as np

from kernels.target_attention import AttentionBackend, host_attention
from kernels.target_attention.cpu import ONNX_CHUNK_BYTES, HeadMajorBehaviours
from kernels.target_attention.jagged import offsets_from_lengths
from service.bundles.loaded import LoadedBundle
from service.contracts import graphs
from service.ranking.behaviours import BehaviourBlock
from service.ranking.observer import NO_OBSERVER, RankingObserver, Stage
from service.ranking.user_cache import EncodedUser, UserKey, UserStateCache
from service.stores.base import FloatArray

GraphMode = Literal["split", "full"]
#: Logits (candidates x behaviours) below which a request's attention stays on one thread.
_PARALLEL_MIN_LOGITS = 1 << 17


@dataclass(frozen=True, slots=True)
class ScoreResult:
    scores: FloatArray  # [C]
    real_weights: FloatArray | None  # [C, L], head-averaged attention, when explaining
    generated_weights: FloatArray | None  # [C, K]


@dataclass(slots=True)
class ScoringRequest:
    """One request's share of a batch: its candidates and its user's behaviours.

    ``encoded`` is the user's cached encoder output when the cache had it; otherwise the batch
    encodes ``real`` and ``generated`` and caches the result under ``user_key``.
    ``candidate_ids`` lets a runner that holds the bundle's item table read the vectors of the
    candidates the table knows there instead of ``candidates`` (the same vectors).
    """

    candidates: FloatArray  # [C, d]
    real: BehaviourBlock
    generated: BehaviourBlock
    explain: bool = False
    user_key: UserKey | None = None
    fingerprint: bytes = b""
    encoded: EncodedUser[Any] | None = None
    candidate_ids: Sequence[str] | None = None
    #: Set by the micro-batcher: from joining its queue to the batch starting, the batch's
    #: scoring time and how many requests shared it.
    waited_ms: float = 0.0
    batch_ms: float = 0.0
    batch_requests: int = 0
    #: Of ``batch_ms``, the scoring itself in the scoring thread (the rest is the hand-off to
    #: that thread and back to the event loop), and that thread's CPU time meanwhile.
    scored_ms: float = 0.0
    scored_cpu_ms: float = 0.0

    @property
    def size(self) -> int:
        return int(self.candidates.shape[0])


class ScoringRunner(Protocol):
    """What the micro-batcher drives: :class:`GraphRunner` on the host, or the device path's
    ``service.device.runner.DeviceRunner``; both score a request alike."""

    @property
    def bundle(self) -> LoadedBundle: ...

    def score_batch(self, requests: Sequence[ScoringRequest]) -> list[ScoreResult]:
        """Scores per request, in order (attention weights for those that explain)."""

    def warm_up(self) -> None:
        """Pay one-time costs (compilation, first allocations) before the first request."""

    def close(self) -> None:
        """Release threads and device memory; the runner is not used again."""


class GraphRunner:
    """Scores batches of :class:`ScoringRequest` with the bundle's graphs on the host."""

    def __init__(
        self,
        bundle: LoadedBundle,
        mode: GraphMode = "split",
        observer: RankingObserver = NO_OBSERVER,
        cache: UserStateCache | None = None,
        attention_threads: int = 1,
        backend: AttentionBackend = AttentionBackend.ONNX_CPU,
        attention_chunk_bytes: int = ONNX_CHUNK_BYTES,
    ) -> None:
        self._bundle = bundle
        self._mode = mode
        self._observer = observer
        self._cache = cache or UserStateCache(0)
        self._heads = bundle.manifest.dimensions.heads
        self._own_rows = bundle.manifest.dimensions.user_layers > 0
        self._slotted = bundle.manifest.dimensions.generated_slots > 0
        self._attend = host_attention(
            backend, self._heads, bundle.items.dim // self._heads, attention_chunk_bytes
        )
        self._attention_threads = attention_threads
        self._pool = (
            ThreadPoolExecutor(attention_threads - 1, thread_name_prefix="attention")
            if attention_threads > 1
            else None
        )

    @property
    def bundle(self) -> LoadedBundle:
        return self._bundle

    def warm_up(self) -> None:
        """Nothing to do: the bundle warmed its graphs up when it was loaded."""

    def close(self) -> None:
        """Stop the attention threads (a swapped-out bundle's runner is closed with it)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def score_batch(self, requests: Sequence[ScoringRequest]) -> list[ScoreResult]:
        """Scores ``[C_r]`` per request, in order. Attention weights come from the split path, so
        a request that asks for explanations goes through it whatever the mode."""
        if self._mode == "full":
            return [self._split([r])[0] if r.explain else self._full(r) for r in requests]
        return self._split(requests)

    def _full(self, request: ScoringRequest) -> ScoreResult:
        real, generated = request.real, request.generated
        with self._observer.stage(Stage.FULL):
            out = self._bundle.run(
                graphs.FULL,
                {
                    graphs.CANDIDATE_VECTORS: request.candidates[None],
                    graphs.SEQUENCE_VECTORS: real.vectors[None],
                    graphs.SEQUENCE_EVENTS: real.events[None],
                    graphs.SEQUENCE_GAPS: real.gaps[None],
                    graphs.SEQUENCE_MASK: real.mask[None],
                    graphs.GENERATED_VECTORS: generated.vectors[None],
                    graphs.GENERATED_MASK: generated.mask[None],
                },
            )
        return ScoreResult(out[graphs.SCORES][0], None, None)

    def _split(self, requests: Sequence[ScoringRequest]) -> list[ScoreResult]:
        stage = self._observer.stage
        with stage(Stage.USER_ENCODER):
            encoded = self._encode_users(requests)
        candidate_offsets = offsets_from_lengths([r.size for r in requests])
        candidates = np.concatenate([r.candidates for r in requests])[None]
        with stage(Stage.CANDIDATE_ENCODER):
            queries = self._bundle.run(
                graphs.CANDIDATE_ENCODER, {graphs.CANDIDATE_VECTORS: candidates}
            )
        real_queries = queries[graphs.REAL_QUERIES][0]
        generated_queries = queries[graphs.GENERATED_QUERIES][0]
        with stage(Stage.ATTENTION):
            real = self._attention(
                real_queries, candidate_offsets, [u.real for u in encoded],
                [r.real for r in requests], [r.explain for r in requests],
            )  # fmt: skip
            generated = self._attention(
                generated_queries, candidate_offsets, [u.generated for u in encoded],
                [r.generated for r in requests], [r.explain for r in requests],
            )  # fmt: skip
        with stage(Stage.SCORER):
            scores = self._bundle.run(
                graphs.SCORER,
                {
                    graphs.CANDIDATE_VECTORS: candidates,
                    graphs.REAL_POOLED: real.pooled[None],
                    graphs.GENERATED_POOLED: generated.pooled[None],
                },
            )[graphs.SCORES][0]
        return [
            ScoreResult(
                scores[candidate_offsets[r] : candidate_offsets[r + 1]],
                real.weights[r],
                generated.weights[r],
            )
            for r in range(len(requests))
        ]

    def _attention(
        self,
        queries: FloatArray,
        candidate_offsets: np.ndarray,
        behaviours: list[HeadMajorBehaviours],
        blocks: list[BehaviourBlock],
        explain: list[bool],
    ) -> _PoolResult:
        """One pool's attention for every request of the batch, spread over the attention
        threads (NumPy and BLAS release the GIL); a large request's candidates are split."""
        pooled = np.empty_like(queries, np.float32)
        weights: list[FloatArray | None] = [
            np.zeros(
                (int(candidate_offsets[r + 1] - candidate_offsets[r]), len(b.mask)), np.float32
            )
            if explain[r]
            else None
            for r, b in enumerate(blocks)
        ]
        parts = [
            (r, part)
            for r, held in enumerate(behaviours)
            for part in self._parts(int(candidate_offsets[r]), int(candidate_offsets[r + 1]), held)
        ]

        def run(r: int, part: slice) -> None:
            pooled[part], part_weights = self._attend(queries[part], behaviours[r], explain[r])
            found = weights[r]
            if found is None or part_weights is None:
                return
            rows = slice(
                part.start - int(candidate_offsets[r]), part.stop - int(candidate_offsets[r])
            )
            if part_weights.shape[1] == found.shape[1]:
                found[rows] = part_weights
            else:  # weights of the behaviours only: padding slots keep 0
                found[rows, valid_rows(blocks[r])] = part_weights

        if self._pool is None or len(parts) == 1:
            for r, part in parts:
                run(r, part)
            return _PoolResult(pooled, weights)
        # This thread and the pool's draw parts from one queue until it is empty.
        queue = iter(parts)
        lock = threading.Lock()

        def drain() -> None:
            while True:
                with lock:
                    item = next(queue, None)
                if item is None:
                    return
                run(*item)

        helpers = min(self._attention_threads - 1, len(parts) - 1)
        pending = [self._pool.submit(drain) for _ in range(helpers)]
        drain()
        for done in pending:
            done.result()
        return _PoolResult(pooled, weights)

    def _parts(self, start: int, stop: int, behaviours: HeadMajorBehaviours) -> list[slice]:
        """Contiguous candidate ranges of one request, one per attention thread when the
        request is large enough to pay for the hand-off."""
        count = stop - start
        threads = self._attention_threads
        if threads == 1 or count * behaviours.length < _PARALLEL_MIN_LOGITS or count < threads:
            return [slice(start, stop)]
        edges = np.linspace(start, stop, threads + 1).astype(int)
        return [slice(int(a), int(b)) for a, b in pairwise(edges)]

    def _encode_users(
        self, requests: Sequence[ScoringRequest]
    ) -> list[EncodedUser[HeadMajorBehaviours]]:
        """Every request's encoded user: from the cache, or all misses in one encoder call."""
        misses = [r for r in requests if r.encoded is None]
        if misses:
            batch = UserEncoderBatch.of(misses, own_rows=self._own_rows, slotted=self._slotted)
            out = self._bundle.run(graphs.USER_ENCODER, batch.feeds)
            for request, real, generated in zip(
                misses, batch.real_at, batch.generated_at, strict=True
            ):
                request.encoded = EncodedUser(
                    request.fingerprint,
                    self._head_major(out, graphs.REAL_KEYS, graphs.REAL_VALUES, real),
                    self._head_major(
                        out, graphs.GENERATED_KEYS, graphs.GENERATED_VALUES, generated
                    ),
                )
                if request.user_key is not None and self._cache.enabled:
                    self._cache.put(request.user_key, request.encoded)
        return [r.encoded for r in requests if r.encoded is not None]

    def _head_major(
        self, out: dict[str, np.ndarray], keys: str, values: str, at: tuple[int, slice]
    ) -> HeadMajorBehaviours:
        return HeadMajorBehaviours.from_rows(out[keys][at], out[values][at], self._heads)


@dataclass(frozen=True, slots=True)
class UserEncoderBatch:
    """The user encoder's inputs for several users, and where each user's rows sit in its
    outputs: ``(batch row, behaviour slice)`` per user and pool."""

    feeds: dict[str, np.ndarray]
    real_at: list[tuple[int, slice]]
    generated_at: list[tuple[int, slice]]

    @classmethod
    def of(
        cls, requests: Sequence[ScoringRequest], own_rows: bool, slotted: bool = False
    ) -> UserEncoderBatch:
        """Packed along the behaviour axis under batch dimension 1, or, with ``own_rows``, one
        padded row per user. Either way every axis has at least one slot: the graph contract
        pads an empty block to one masked slot, whose output is never read. ``slotted`` adds
        each generated behaviour's rank among its block's filled slots (what a bundle with slot
        vectors takes)."""
        real_rows = [valid_rows(r.real) for r in requests]
        generated_rows = [valid_rows(r.generated) for r in requests]
        stack = _padded if own_rows else _packed
        feeds = {
            graphs.SEQUENCE_VECTORS: stack(
                [r.real.vectors[rows] for r, rows in zip(requests, real_rows, strict=True)]
            ),
            graphs.SEQUENCE_EVENTS: stack(
                [r.real.events[rows] for r, rows in zip(requests, real_rows, strict=True)]
            ),
            graphs.SEQUENCE_GAPS: stack(
                [r.real.gaps[rows] for r, rows in zip(requests, real_rows, strict=True)]
            ),
            graphs.GENERATED_VECTORS: stack(
                [
                    r.generated.vectors[rows]
                    for r, rows in zip(requests, generated_rows, strict=True)
                ]
            ),
        }
        if slotted:
            feeds[graphs.GENERATED_SLOTS] = stack(
                [np.arange(len(rows), dtype=np.int64) for rows in generated_rows]
            )
        return cls(feeds, _located(real_rows, own_rows), _located(generated_rows, own_rows))


def _located(rows: list[np.ndarray], own_rows: bool) -> list[tuple[int, slice]]:
    if own_rows:
        return [(b, slice(0, len(user))) for b, user in enumerate(rows)]
    offsets = offsets_from_lengths([len(user) for user in rows])
    return [(0, slice(int(a), int(b))) for a, b in pairwise(offsets)]


def valid_rows(block: BehaviourBlock) -> np.ndarray:
    """Rows of a block that are behaviours, not padding."""
    return np.flatnonzero(block.mask > 0)


def _packed(blocks: list[np.ndarray]) -> np.ndarray:
    """Blocks stacked along the behaviour axis under batch dimension 1."""
    packed = np.concatenate(blocks)
    if len(packed) == 0:
        packed = np.zeros((1, *packed.shape[1:]), packed.dtype)
    return packed[None]


def _padded(blocks: list[np.ndarray]) -> np.ndarray:
    """One row per block, zero-padded after its behaviours to the longest (at least one slot)."""
    longest = max(1, max(len(block) for block in blocks))
    first = blocks[0]
    padded = np.zeros((len(blocks), longest, *first.shape[1:]), first.dtype)
    for row, block in enumerate(blocks):
        padded[row, : len(block)] = block
    return padded


@dataclass(frozen=True, slots=True)
class _PoolResult:
    pooled: FloatArray  # [total candidates, d]
    weights: list[FloatArray | None]  # per request [C_r, slots of its block], when explaining
