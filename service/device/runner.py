"""The device path: a batch of requests scored on a GPU (or, in tests, on PyTorch's CPU).

The bundle's fused item table and the per-user cache of encoded keys and values live on the
device as tensors. For a batch: the users that missed the cache go through the user encoder in
one call (a padded row each); the candidates the table knows are gathered from the device copy
of the table (only their row numbers are uploaded); the candidate encoder runs over the whole
batch; the attention of every request and both behaviour pools is one launch of the Triton kernel
over the jagged batch; the scorer runs over the whole batch; and only the scores (and the
attention weights of requests that ask for explanations) come back to the host. The graphs run
in onnxruntime with IOBinding, or in PyTorch from the bundle's weights (:mod:`.graphs`).

Scores equal the host path's (:class:`service.ranking.scoring.GraphRunner`) to float32
rounding. On a GPU the stage timings are the host's (launches are asynchronous): the wait for
the device falls in the scorer stage, where the scores are copied back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from kernels.target_attention import (
    AttentionBackend,
    AttentionPool,
    PooledAttention,
    jagged_target_attention,
    offsets_from_lengths,
)
from service.bundles.loaded import LoadedBundle
from service.contracts import graphs as g
from service.device.context import DeviceContext, device_context
from service.device.graphs import DeviceGraphs, OrtGraphs, TorchGraphs
from service.device.modules import load_modules
from service.device.plan import DeviceUnavailable, ScoringPlan
from service.ranking.behaviours import BehaviourBlock
from service.ranking.observer import NO_OBSERVER, RankingObserver, Stage
from service.ranking.scoring import (
    ScoreResult,
    ScoringRequest,
    UserEncoderBatch,
    valid_rows,
)
from service.ranking.user_cache import EncodedUser, UserStateCache
from service.stores.base import FloatArray

log = logging.getLogger(__name__)

#: Candidates per warm-up batch on a GPU: compiles the kernels and tunes the common sizes.
_GPU_WARM_UP_CANDIDATES = (1, 64, 512, 2048)


@dataclass(frozen=True, slots=True)
class DevicePool:
    """One behaviour pool of an encoded user on the device: row-major keys and values
    ``[L, d]`` (the jagged kernel's layout)."""

    keys: Tensor
    values: Tensor

    @property
    def length(self) -> int:
        return int(self.keys.shape[0])

    @property
    def nbytes(self) -> int:
        return 2 * self.keys.numel() * self.keys.element_size()


class DeviceRunner:
    """Scores batches of :class:`ScoringRequest` on the device; the micro-batcher's runner on
    the device path."""

    def __init__(
        self,
        bundle: LoadedBundle,
        context: DeviceContext,
        graphs: DeviceGraphs,
        backend: AttentionBackend = AttentionBackend.TRITON,
        observer: RankingObserver = NO_OBSERVER,
        cache: UserStateCache | None = None,
    ) -> None:
        if backend.on_host:
            raise ValueError(f"attention backend {backend.value} runs on the host path")
        self._bundle = bundle
        self._context = context
        self._graphs = graphs
        self._backend = backend
        self._observer = observer
        self._cache = cache or UserStateCache(0)
        self._heads = bundle.manifest.dimensions.heads
        device = context.device
        with context.scope():
            # The table as stored (float16 or float32), whatever the host holds (it may widen
            # it to float32 for its own lookups); gathered rows are widened to float32.
            stored = np.array(bundle.items.vectors, bundle.manifest.item_table.dtype)
            self._table = torch.from_numpy(stored).to(device)
            default = np.asarray(bundle.items.default_vector, np.float32)
            self._default = torch.from_numpy(default).to(device)

    @classmethod
    def open(
        cls,
        bundle: LoadedBundle,
        plan: ScoringPlan,
        observer: RankingObserver = NO_OBSERVER,
        cache: UserStateCache | None = None,
    ) -> DeviceRunner:
        """The runner ``plan`` describes: onnxruntime's graphs, or PyTorch's from the bundle's
        weights when onnxruntime cannot run on the device and the plan allows the fallback."""
        context = device_context(plan.device, plan.device_index)
        graphs: DeviceGraphs
        if plan.device_graphs == "onnxruntime":
            try:
                graphs = OrtGraphs(bundle, context)
            except DeviceUnavailable as error:
                if not plan.torch_fallback:
                    raise
                log.warning("%s: the graphs run in PyTorch from the bundle's weights", error)
                graphs = TorchGraphs(
                    load_modules(bundle.directory, bundle.manifest, context.device)
                )
        else:
            graphs = TorchGraphs(load_modules(bundle.directory, bundle.manifest, context.device))
        log.info(
            "bundle %s on %s (%s): graphs on %s, attention %s",
            bundle.version,
            context.device,
            context.name,
            graphs.engine,
            plan.backend.value,
        )
        return cls(bundle, context, graphs, plan.backend, observer, cache)

    @property
    def bundle(self) -> LoadedBundle:
        return self._bundle

    @property
    def graphs_engine(self) -> str:
        return self._graphs.engine

    def score_batch(self, requests: Sequence[ScoringRequest]) -> list[ScoreResult]:
        """Scores ``[C_r]`` per request, in order, and the attention weights of those that
        explain (``[C_r, slots of the block]``, padding slots 0), as the host path gives them."""
        if not requests:
            return []
        with self._context.scope(), torch.inference_mode():
            return self._score(requests, self._observer)

    def warm_up(self) -> None:
        """Compile the kernels (and, on a GPU, tune them for the common batch sizes) on
        synthetic batches at the bundle's longest sequences, so the first requests do not."""
        lengths = self._bundle.manifest.max_lengths
        on_gpu = self._context.device.type == "cuda"
        sizes = _GPU_WARM_UP_CANDIDATES if on_gpu else (2,)
        real = lengths.sequence if on_gpu else min(lengths.sequence, 3)
        generated = lengths.generated if on_gpu else min(lengths.generated, 2)
        rng = np.random.default_rng(0)
        with self._context.scope(), torch.inference_mode():
            for candidates in sizes:
                for explain in (False, True):
                    request = _synthetic_request(
                        rng, self._bundle.items.dim, candidates, real, generated, explain
                    )
                    self._score([request], NO_OBSERVER)

    def close(self) -> None:
        """Drop this runner's device memory (the cache's entries go with their bundle version
        as it evicts them)."""
        self._table = self._table[:0]

    def _score(
        self, requests: Sequence[ScoringRequest], observer: RankingObserver
    ) -> list[ScoreResult]:
        with observer.stage(Stage.USER_ENCODER):
            users = self._encode_users(requests)
        candidate_offsets = offsets_from_lengths([r.size for r in requests])
        if candidate_offsets[-1] == 0:
            return [_empty_result(r) for r in requests]
        with observer.stage(Stage.CANDIDATE_ENCODER):
            candidates = self._candidates(requests)[None]
            real_queries, generated_queries = self._graphs.candidate_encoder(candidates)
        explain = any(r.explain for r in requests)
        with observer.stage(Stage.ATTENTION):
            pools = [
                _pool(real_queries[0], [u.real for u in users]),
                _pool(generated_queries[0], [u.generated for u in users]),
            ]
            real, generated = jagged_target_attention(
                candidate_offsets, pools, self._heads, explain, self._backend
            )
        with observer.stage(Stage.SCORER):
            scores = self._graphs.scorer(candidates, real.pooled[None], generated.pooled[None])
            host_scores = scores[0].float().cpu().numpy()
        results = []
        for r, request in enumerate(requests):
            rows = slice(int(candidate_offsets[r]), int(candidate_offsets[r + 1]))
            real_weights = generated_weights = None
            if request.explain:
                real_weights = _weights(real, r, request.size, request.real)
                generated_weights = _weights(generated, r, request.size, request.generated)
            results.append(ScoreResult(host_scores[rows], real_weights, generated_weights))
        return results

    def _encode_users(self, requests: Sequence[ScoringRequest]) -> list[EncodedUser[DevicePool]]:
        """Every request's encoded user: from the cache, or all misses in one encoder call, a
        padded row each."""
        misses = [r for r in requests if r.encoded is None]
        if misses:
            slotted = self._bundle.manifest.dimensions.generated_slots > 0
            batch = UserEncoderBatch.of(misses, own_rows=True, slotted=slotted)
            device = self._context.device
            feeds = {
                name: torch.from_numpy(array).to(device) for name, array in batch.feeds.items()
            }
            real_keys, real_values, generated_keys, generated_values = self._graphs.user_encoder(
                feeds[g.SEQUENCE_VECTORS],
                feeds[g.SEQUENCE_EVENTS],
                feeds[g.SEQUENCE_GAPS],
                feeds[g.GENERATED_VECTORS],
                feeds.get(g.GENERATED_SLOTS),
            )
            for request, real, generated in zip(
                misses, batch.real_at, batch.generated_at, strict=True
            ):
                # Copies, so that a cached user holds its own rows, not the whole batch's.
                request.encoded = EncodedUser(
                    request.fingerprint,
                    DevicePool(real_keys[real].clone(), real_values[real].clone()),
                    DevicePool(
                        generated_keys[generated].clone(), generated_values[generated].clone()
                    ),
                )
                if request.user_key is not None and self._cache.enabled:
                    self._cache.put(request.user_key, request.encoded)
        return [r.encoded for r in requests if r.encoded is not None]

    def _candidates(self, requests: Sequence[ScoringRequest]) -> Tensor:
        """The batch's candidate vectors ``[C, d]`` float32 on the device: rows of the device
        table where every request names its candidates, else uploaded from the host."""
        device = self._context.device
        if any(r.candidate_ids is None or len(r.candidate_ids) != r.size for r in requests):
            host = np.concatenate([r.candidates for r in requests])
            return torch.from_numpy(np.ascontiguousarray(host, np.float32)).to(device)
        items = self._bundle.items
        rows = [items.rows(r.candidate_ids) for r in requests if r.candidate_ids is not None]
        packed = np.concatenate(rows)
        vectors = self._table[torch.from_numpy(packed).to(device).clamp_min(0)].float()
        unknown = np.flatnonzero(packed < 0)
        if len(unknown):
            # Not in the bundle's table: the store's vector (the default one, or an item
            # published after the bundle was built).
            stored = np.concatenate(
                [r.candidates[row < 0] for r, row in zip(requests, rows, strict=True)]
            )
            vectors[torch.from_numpy(unknown).to(device)] = torch.from_numpy(
                np.ascontiguousarray(stored, np.float32)
            ).to(device)
        return vectors


def _pool(queries: Tensor, users: list[DevicePool]) -> AttentionPool[Tensor]:
    """One behaviour pool of the jagged batch: every user's keys and values, packed."""
    return AttentionPool(
        queries,
        torch.cat([u.keys for u in users]),
        torch.cat([u.values for u in users]),
        offsets_from_lengths([u.length for u in users]),
    )


def _weights(
    pooled: PooledAttention[Tensor], r: int, candidates: int, block: BehaviourBlock
) -> FloatArray:
    """Request ``r``'s head-averaged weights ``[C, slots of its block]`` on the host, padding
    slots 0 (as the host path gives them)."""
    found = np.zeros((candidates, len(block.mask)), np.float32)
    assert pooled.weights is not None and pooled.weight_offsets is not None
    start, stop = int(pooled.weight_offsets[r]), int(pooled.weight_offsets[r + 1])
    rows = valid_rows(block)
    if stop > start:
        weights = pooled.weights[start:stop].float().cpu().numpy()
        found[:, rows] = weights.reshape(candidates, len(rows))
    return found


def _empty_result(request: ScoringRequest) -> ScoreResult:
    if not request.explain:
        return ScoreResult(np.zeros(0, np.float32), None, None)
    return ScoreResult(
        np.zeros(0, np.float32),
        np.zeros((0, len(request.real.mask)), np.float32),
        np.zeros((0, len(request.generated.mask)), np.float32),
    )


def _synthetic_request(
    rng: np.random.Generator, dim: int, candidates: int, real: int, generated: int, explain: bool
) -> ScoringRequest:
    def block(length: int) -> BehaviourBlock:
        if length == 0:
            return BehaviourBlock.padding(dim)
        return BehaviourBlock(
            item_ids=[""] * length,
            vectors=rng.standard_normal((length, dim)).astype(np.float32),
            mask=np.ones(length, np.float32),
            events=np.ones(length, np.int64),
            gaps=np.zeros(length, np.int64),
        )

    vectors = rng.standard_normal((candidates, dim)).astype(np.float32)
    return ScoringRequest(vectors, block(real), block(generated), explain)
