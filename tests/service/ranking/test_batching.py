"""The micro-batcher and the per-user cache: batched scores equal scores alone, deadlines hold,
and a cached user's keys and values are never served stale."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from service.bundles.loaded import LoadedBundle
from service.errors import DeadlineExceeded
from service.ranking.batcher import BatchingConfig, MicroBatcher
from service.ranking.behaviours import BehaviourBlock
from service.ranking.scoring import GraphRunner, ScoreResult, ScoringRequest, candidate_shares
from service.ranking.user_cache import (
    UserKey,
    UserStateCache,
    behaviours_fingerprint,
)
from tests.support.behaviours import random_block


def _request(
    rng: np.random.Generator, dim: int, candidates: int, length: int, k: int, explain: bool = False
) -> ScoringRequest:
    return ScoringRequest(
        rng.standard_normal((candidates, dim)).astype(np.float32),
        random_block(rng, length, dim),
        random_block(rng, k, dim, generated=True),
        explain,
    )


def _alone(runner: GraphRunner, request: ScoringRequest) -> ScoreResult:
    """``request`` scored alone (a batch of one), without the cache."""
    bare = ScoringRequest(request.candidates, request.real, request.generated, request.explain)
    return runner.score_batch([bare])[0]


@pytest.mark.parametrize("mode", ["split", "full"])
def test_a_batch_scores_each_request_as_if_alone(bundle: LoadedBundle, mode: str) -> None:
    rng = np.random.default_rng(7)
    dim = bundle.items.dim
    shapes = [(1, 5, 2), (40, 0, 3), (13, 17, 0), (0, 4, 1), (25, 1, 1), (7, 9, 2)]
    requests = [
        _request(rng, dim, c, length, k, explain=i % 2 == 0)
        for i, (c, length, k) in enumerate(shapes)
    ]
    runner = GraphRunner(bundle, mode)  # type: ignore[arg-type]
    batched = runner.score_batch(requests)
    for request, result in zip(requests, batched, strict=True):
        alone = _alone(GraphRunner(bundle, mode), request)  # type: ignore[arg-type]
        assert result.scores.shape == (request.size,)
        np.testing.assert_allclose(result.scores, alone.scores, rtol=1e-5, atol=1e-6)
        if request.explain:
            assert result.real_weights is not None and alone.real_weights is not None
            assert result.real_weights.shape == (request.size, len(request.real.mask))
            np.testing.assert_allclose(result.real_weights, alone.real_weights, atol=1e-6)


def test_the_split_path_matches_the_full_graph(bundle: LoadedBundle) -> None:
    rng = np.random.default_rng(3)
    requests = [
        _request(rng, bundle.items.dim, 30, 12, 4),
        _request(rng, bundle.items.dim, 9, 0, 0),
    ]
    split = GraphRunner(bundle, "split").score_batch(requests)
    full = GraphRunner(bundle, "full").score_batch(requests)
    for a, b in zip(split, full, strict=True):
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)


@pytest.mark.anyio
async def test_concurrent_requests_get_their_own_scores(bundle: LoadedBundle) -> None:
    rng = np.random.default_rng(11)
    dim = bundle.items.dim
    requests = [
        _request(
            rng, dim, int(rng.integers(1, 60)), int(rng.integers(0, 40)), int(rng.integers(0, 5))
        )
        for _ in range(48)
    ]
    expected = [_alone(GraphRunner(bundle), r).scores for r in requests]
    sizes: list[int] = []

    class Sizes:
        def __getattr__(self, name: str):  # every observer hook but the one we count
            return lambda *args, **kwargs: None

        def batch_started(self, requests: int, candidates: int) -> None:
            sizes.append(requests)

    batcher = MicroBatcher(GraphRunner(bundle), BatchingConfig(max_candidates=400), Sizes())  # type: ignore[arg-type]
    batcher.start()
    try:
        results = await asyncio.gather(*(batcher.score(r) for r in requests))
    finally:
        await batcher.close()
    for result, scores in zip(results, expected, strict=True):
        np.testing.assert_allclose(result.scores, scores, rtol=1e-5, atol=1e-6)
    assert max(sizes) > 1, "concurrent requests should share batches"
    assert sum(sizes) == len(requests)


@pytest.mark.anyio
async def test_a_slow_request_cannot_hold_others_past_their_deadlines(bundle: LoadedBundle) -> None:
    """A huge request is scored alone (over the batch bound) and a second scoring thread keeps
    the urgent small ones moving; none of them is answered after its deadline."""
    rng = np.random.default_rng(5)
    dim = bundle.items.dim
    huge = _request(rng, dim, 2000, 1500, 8)
    batcher = MicroBatcher(GraphRunner(bundle), BatchingConfig(max_candidates=500, workers=2))
    batcher.start()
    try:
        slow = asyncio.create_task(batcher.score(huge))
        await asyncio.sleep(0)  # the huge request is taken first
        budget = 5.0
        small = [_request(rng, dim, 10, 5, 1) for _ in range(20)]

        async def timed(request: ScoringRequest) -> float:
            started = time.monotonic()
            await batcher.score(request, deadline=started + budget)
            return time.monotonic() - started

        elapsed = await asyncio.gather(*(timed(r) for r in small))
        await slow
    finally:
        await batcher.close()
    assert max(elapsed) <= budget


@pytest.mark.anyio
async def test_a_request_past_its_deadline_is_refused_not_scored(bundle: LoadedBundle) -> None:
    rng = np.random.default_rng(1)
    batcher = MicroBatcher(GraphRunner(bundle))
    batcher.start()
    try:
        with pytest.raises(DeadlineExceeded, match="timeout_ms"):
            await batcher.score(
                _request(rng, bundle.items.dim, 5, 3, 1), deadline=time.monotonic() - 1
            )
        # The batcher keeps serving afterwards.
        result = await batcher.score(_request(rng, bundle.items.dim, 5, 3, 1))
        assert result.scores.shape == (5,)
    finally:
        await batcher.close()


def _cached_request(request: ScoringRequest, cache: UserStateCache, key: UserKey) -> ScoringRequest:
    request.user_key = key
    request.fingerprint = behaviours_fingerprint(request.real, request.generated)
    request.encoded = cache.get(key, request.fingerprint)
    return request


def test_a_cached_user_scores_like_a_fresh_one(bundle: LoadedBundle) -> None:
    rng = np.random.default_rng(2)
    cache = UserStateCache(1 << 20)
    runner = GraphRunner(bundle, cache=cache)
    key = UserKey("u1", bundle.version)
    first = _cached_request(_request(rng, bundle.items.dim, 20, 30, 3), cache, key)
    assert first.encoded is None
    scores = runner.score_batch([first])[0].scores
    again = ScoringRequest(first.candidates, first.real, first.generated)
    again = _cached_request(again, cache, key)
    assert again.encoded is not None, "the second request of the session hits the cache"
    np.testing.assert_allclose(runner.score_batch([again])[0].scores, scores, rtol=1e-6)


def test_new_behaviours_or_a_new_bundle_never_reuse_old_keys(bundle: LoadedBundle) -> None:
    rng = np.random.default_rng(4)
    dim = bundle.items.dim
    cache = UserStateCache(1 << 20)
    runner = GraphRunner(bundle, cache=cache)
    key = UserKey("u1", bundle.version)
    request = _cached_request(_request(rng, dim, 10, 8, 2), cache, key)
    runner.score_batch([request])
    real = request.real
    # A new event: one more behaviour.
    longer = BehaviourBlock(
        [*real.item_ids, "i3"],
        np.concatenate([real.vectors, rng.standard_normal((1, dim)).astype(np.float32)]),
        np.ones(len(real.mask) + 1, np.float32),
        np.concatenate([real.events, [1]]),
        np.concatenate([real.gaps, [0]]),
    )
    # Time passed: the same events fall into other gap buckets.
    older = BehaviourBlock(real.item_ids, real.vectors, real.mask, real.events, real.gaps + 1)
    # A new generated block.
    regenerated = random_block(rng, 2, dim, generated=True)
    for real_block, generated in [
        (longer, request.generated),
        (older, request.generated),
        (real, regenerated),
    ]:
        changed = ScoringRequest(request.candidates, real_block, generated)
        changed = _cached_request(changed, cache, key)
        assert changed.encoded is None
        fresh = _alone(GraphRunner(bundle), changed).scores
        np.testing.assert_allclose(runner.score_batch([changed])[0].scores, fresh, rtol=1e-5)
    same = _cached_request(
        ScoringRequest(request.candidates, request.real, request.generated), cache, key
    )
    assert same.encoded is None, "the entry was replaced by the newest behaviours"
    other_bundle = UserKey("u1", "another-version")
    assert cache.get(other_bundle, behaviours_fingerprint(request.real, request.generated)) is None


def test_the_cache_is_bounded_by_bytes_least_recent_out(bundle: LoadedBundle) -> None:
    rng = np.random.default_rng(6)
    runner = GraphRunner(bundle)
    entries = []
    for _ in range(3):
        request = _request(rng, bundle.items.dim, 1, 64, 4)
        runner.score_batch([request])
        assert request.encoded is not None
        entries.append(request.encoded)
    seen: list[int] = []
    cache = UserStateCache(2 * entries[0].nbytes + 10, on_resize=seen.append)
    for n, entry in enumerate(entries[:2]):
        cache.put(UserKey(f"u{n}", "v"), entry)
    assert cache.get(UserKey("u0", "v"), entries[0].fingerprint) is not None  # u0 now recent
    cache.put(UserKey("u2", "v"), entries[2])
    assert cache.get(UserKey("u1", "v"), entries[1].fingerprint) is None  # evicted
    assert cache.get(UserKey("u0", "v"), entries[0].fingerprint) is not None
    stats = cache.stats()
    assert stats.entries == 2 and stats.bytes <= stats.capacity_bytes
    assert seen[-1] == stats.bytes


def test_a_large_batch_shared_over_threads_scores_as_if_alone(bundle: LoadedBundle) -> None:
    rng = np.random.default_rng(9)
    dim = bundle.items.dim
    requests = [
        _request(rng, dim, 1200, 300, 4, explain=True),
        _request(rng, dim, 5, 0, 2, explain=True),
        _request(rng, dim, 1100, 260, 0),
    ]

    def helpers() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith("attention")}

    before = helpers()
    runner = GraphRunner(bundle, attention_threads=3)
    threaded = runner.score_batch(requests)
    # The other shares went to this runner's attention threads (started on first use).
    assert helpers() - before
    runner.close()
    assert all(r.encoded is not None for r in requests)
    logits = np.repeat(
        [r.encoded.real.length + r.encoded.generated.length for r in requests if r.encoded],
        [r.size for r in requests],
    )
    shares = candidate_shares(logits, 3)
    # The batch is shared out, and a share ends inside each large request.
    assert len(shares) == 3
    assert 0 < shares[0].stop < 1200 and 1205 < shares[1].stop < 2305
    for request, result in zip(requests, threaded, strict=True):
        alone = _alone(GraphRunner(bundle), request)
        np.testing.assert_allclose(result.scores, alone.scores, rtol=1e-5, atol=1e-6)
        if request.explain:
            assert result.real_weights is not None and alone.real_weights is not None
            np.testing.assert_allclose(result.real_weights, alone.real_weights, atol=1e-6)
            assert result.generated_weights is not None and alone.generated_weights is not None
            np.testing.assert_allclose(result.generated_weights, alone.generated_weights, atol=1e-6)


def test_candidate_shares_cover_the_batch_in_equal_work() -> None:
    logits = np.array([300] * 1000 + [2] * 10 + [100] * 900)
    shares = candidate_shares(logits, 2, min_logits=1)
    assert [(s.start, s.stop) for s in shares] == [(0, 651), (651, 1910)]
    work = [int(logits[s].sum()) for s in shares]
    assert abs(work[0] - work[1]) <= 2 * 300  # the cut falls within one candidate
    assert candidate_shares(np.full(500, 272), 2) == [slice(0, 500)]  # one W1 request: alone
    assert len(candidate_shares(np.full(2000, 1032), 2)) == 2  # one W2 request: shared
    assert candidate_shares(logits, 1, min_logits=1) == [slice(0, 1910)]
    assert candidate_shares(np.array([5, 5]), 3, min_logits=1) == [slice(0, 2)]
    assert candidate_shares(np.zeros(0, np.int64), 2) == [slice(0, 0)]
