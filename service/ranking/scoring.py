"""Run the bundle's graphs on a batch of requests on the host: split (encoders, attention,
scorer) or full. The device path (``service.device.runner``) scores the same requests with the
same results behind the same :class:`ScoringRunner` interface.

Split mode packs the batch jaggedly. The candidate encoder and the scorer work row by row (a
candidate), so every request's rows go through each graph in one call with batch dimension 1 and
no padding; the attention runs per request, over that request's own behaviours, in the host
backend of the dispatcher (``onnx_cpu`` or ``numpy``). A large batch's candidates are cut into
contiguous shares of equal attention work, one per attention thread, and each share goes through
the candidate encoder, the attention and the scorer on its own thread.

The user encoder is packed the same way when it too works behaviour by behaviour; with
self-attention layers (``user_layers`` in the manifest) each user gets their own row of a padded
batch instead, padding after the behaviours, which causal attention never lets reach them. Users
found in the :class:`UserStateCache` skip the user encoder.

Full mode runs the single full graph request by request (its batch axis would need padding).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
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
from service.threads import start_helper_thread

GraphMode = Literal["split", "full"]
#: Attention logits (candidates x behaviours) below which a batch stays on one thread: the
#: hand-off to another thread costs about what a few hundred candidates' scoring does, so a
#: batch of one or two W1 requests (500 candidates, 272 behaviours) is scored faster alone.
PARALLEL_MIN_LOGITS = 1 << 19


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
        thread_niceness: int = 0,
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
            ThreadPoolExecutor(
                attention_threads - 1,
                thread_name_prefix="attention",
                initializer=partial(start_helper_thread, thread_niceness),
            )
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
        """Encode the users, then take the batch's candidate rows through the candidate
        encoder, both attention pools and the scorer; a large batch's rows in contiguous shares
        of equal attention work, one per attention thread, each share through all three."""
        with self._observer.stage(Stage.USER_ENCODER):
            encoded = self._encode_users(requests)
        batch = _CandidateBatch.of(requests, encoded)
        shares = candidate_shares(batch.row_logits, self._attention_threads)
        if self._pool is None or len(shares) == 1:
            self._score_rows(batch, shares[0], observed=True)
        else:
            # The stages are timed on this thread's share; the others run beside it.
            helpers = [
                self._pool.submit(self._score_rows, batch, share, False) for share in shares[1:]
            ]
            self._score_rows(batch, shares[0], observed=True)
            for helper in helpers:
                helper.result()
        offsets = batch.offsets
        return [
            ScoreResult(
                batch.scores[offsets[r] : offsets[r + 1]],
                batch.real_weights[r],
                batch.generated_weights[r],
            )
            for r in range(len(requests))
        ]

    def _score_rows(self, batch: _CandidateBatch, rows: slice, observed: bool) -> None:
        """Scores of the batch's candidate ``rows`` (and their attention weights, for the
        requests that explain), written into ``batch``."""
        stage = (self._observer if observed else NO_OBSERVER).stage
        candidates = batch.candidates[rows][None]
        with stage(Stage.CANDIDATE_ENCODER):
            queries = self._bundle.run(
                graphs.CANDIDATE_ENCODER, {graphs.CANDIDATE_VECTORS: candidates}
            )
        real_queries = queries[graphs.REAL_QUERIES][0]
        generated_queries = queries[graphs.GENERATED_QUERIES][0]
        real_pooled = np.empty_like(real_queries, np.float32)
        generated_pooled = np.empty_like(generated_queries, np.float32)
        with stage(Stage.ATTENTION):
            for r, own, here in batch.pieces(rows):
                real_pooled[here] = self._attend_request(
                    real_queries[here], batch.encoded[r].real, batch.requests[r].real,
                    batch.requests[r].explain, batch.real_weights[r], own,
                )  # fmt: skip
                generated_pooled[here] = self._attend_request(
                    generated_queries[here], batch.encoded[r].generated,
                    batch.requests[r].generated, batch.requests[r].explain,
                    batch.generated_weights[r], own,
                )  # fmt: skip
        with stage(Stage.SCORER):
            batch.scores[rows] = self._bundle.run(
                graphs.SCORER,
                {
                    graphs.CANDIDATE_VECTORS: candidates,
                    graphs.REAL_POOLED: real_pooled[None],
                    graphs.GENERATED_POOLED: generated_pooled[None],
                },
            )[graphs.SCORES][0]

    def _attend_request(
        self,
        queries: FloatArray,
        behaviours: HeadMajorBehaviours,
        block: BehaviourBlock,
        explain: bool,
        weights: FloatArray | None,
        own: slice,
    ) -> FloatArray:
        """One request's pooled behaviours for ``queries``, its candidates ``own`` (rows of the
        request); their attention weights written into ``weights`` when it explains."""
        pooled, found = self._attend(queries, behaviours, explain)
        if weights is not None and found is not None:
            if found.shape[1] == weights.shape[1]:
                weights[own] = found
            else:  # weights of the behaviours only: padding slots keep 0
                weights[own, valid_rows(block)] = found
        return pooled

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


def candidate_shares(
    row_logits: np.ndarray, threads: int, min_logits: int = PARALLEL_MIN_LOGITS
) -> list[slice]:
    """Contiguous candidate rows of a batch, one per thread when its attention (``row_logits``:
    each candidate's logits, its user's behaviours) comes to at least ``min_logits``, cut where
    each holds an equal part of it; otherwise all the rows in one."""
    work = np.cumsum(row_logits)
    total = int(work[-1]) if len(work) else 0
    if threads == 1 or total < min_logits or len(work) < threads:
        return [slice(0, len(work))]
    edges = np.searchsorted(work, np.linspace(0, total, threads + 1)[1:-1], side="left") + 1
    bounds = [0, *sorted({int(e) for e in edges} - {0, len(work)}), len(work)]
    return [slice(a, b) for a, b in pairwise(bounds)]


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
class _CandidateBatch:
    """A batch's candidates packed row after row, where each request's rows start, and what
    scoring them fills in: scores, and attention weights per request that explains."""

    requests: Sequence[ScoringRequest]
    encoded: list[EncodedUser[HeadMajorBehaviours]]
    candidates: FloatArray  # [total candidates, d]
    offsets: np.ndarray  # [requests + 1]
    scores: FloatArray  # [total candidates]
    real_weights: list[FloatArray | None]  # per request [C_r, slots of its block]
    generated_weights: list[FloatArray | None]

    @classmethod
    def of(
        cls, requests: Sequence[ScoringRequest], encoded: list[EncodedUser[HeadMajorBehaviours]]
    ) -> _CandidateBatch:
        def weights(blocks: list[BehaviourBlock]) -> list[FloatArray | None]:
            return [
                np.zeros((r.size, len(block.mask)), np.float32) if r.explain else None
                for r, block in zip(requests, blocks, strict=True)
            ]

        candidates = np.concatenate([r.candidates for r in requests])
        return cls(
            requests,
            encoded,
            candidates,
            offsets_from_lengths([r.size for r in requests]),
            np.empty(len(candidates), np.float32),
            weights([r.real for r in requests]),
            weights([r.generated for r in requests]),
        )

    @property
    def row_logits(self) -> np.ndarray:
        """Attention logits of each candidate row: its user's behaviours in both pools."""
        per_request = [u.real.length + u.generated.length for u in self.encoded]
        return np.repeat(np.asarray(per_request, np.int64), np.diff(self.offsets))

    def pieces(self, rows: slice) -> list[tuple[int, slice, slice]]:
        """The requests the batch's ``rows`` cover: each with its rows among its own
        candidates, and where they sit among ``rows``."""
        found = []
        for r, (start, stop) in enumerate(pairwise(self.offsets.tolist())):
            low, high = max(start, rows.start), min(stop, rows.stop)
            if low < high:
                found.append(
                    (
                        r,
                        slice(low - start, high - start),
                        slice(low - rows.start, high - rows.start),
                    )
                )
        return found
