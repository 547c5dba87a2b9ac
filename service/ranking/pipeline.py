"""The ranking pipeline: fetch in one round trip, assemble behaviours, score, top-k.

It ranks a request the route has checked against the request limits
(:meth:`service.ranking.limits.RequestLimits.check_rank`); it takes the defaults of ``top_k`` and
``timeout_ms`` from those limits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from service.bundles.loaded import LoadedBundle
from service.errors import StoreCircuitOpen, StoreError, StoreTimeout, StoreUnavailable
from service.ranking.batcher import MicroBatcher
from service.ranking.behaviours import (
    BehaviourBlock,
    RealBehaviours,
    generated_block,
    real_behaviours,
)
from service.ranking.breakdown import current_breakdown
from service.ranking.explain import explain
from service.ranking.limits import RequestLimits
from service.ranking.observer import NO_OBSERVER, FetchOutcome, RankingObserver, Stage
from service.ranking.result import Degradation, Ranking, ScoredItem, Timings
from service.ranking.scoring import ScoreResult, ScoringRequest
from service.ranking.user_cache import UserKey, UserStateCache, behaviours_fingerprint
from service.stores.base import FetchQuery, FetchResult, RankingStore, UserSequence

#: How a failed fetch is counted and reported, by the cause of the store's error (first match).
_STORE_FAILURES = (
    (StoreTimeout, FetchOutcome.TIMEOUT, Degradation.STORE_TIMEOUT),
    (StoreUnavailable, FetchOutcome.UNAVAILABLE, Degradation.STORE_UNAVAILABLE),
    (StoreError, FetchOutcome.ERROR, Degradation.STORE_ERROR),
)


def store_failure(error: StoreError) -> tuple[FetchOutcome, Degradation]:
    """The outcome and the degradation of a fetch that failed with ``error``; an open circuit
    counts as the failure that opened it."""
    if isinstance(error, StoreCircuitOpen) and error.opened_by is not None:
        error = error.opened_by
    for kind, outcome, reason in _STORE_FAILURES:
        if isinstance(error, kind):
            return outcome, reason
    raise AssertionError(f"unclassified store error {type(error).__name__}")


@dataclass(frozen=True, slots=True)
class RankQuery:
    """A rank request in domain terms, checked against the schema and the request limits."""

    request_id: str
    user_id: str
    candidates: list[str]
    top_k: int | None = None
    recent_events: UserSequence = field(default_factory=UserSequence.empty)
    explain: bool = False
    timeout_ms: int | None = None
    #: Unix seconds the request is scored as of (a replay); None: the clock's time.
    as_of: int | None = None


def _elapsed_ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000.0, 3)


class RankingPipeline:
    """Ranks a request's candidates for its user with the served bundle."""

    def __init__(
        self,
        bundle: LoadedBundle,
        store: RankingStore,
        batcher: MicroBatcher,
        limits: RequestLimits,
        clock: Callable[[], float] = time.time,
        observer: RankingObserver = NO_OBSERVER,
        cache: UserStateCache | None = None,
    ) -> None:
        self.bundle = bundle
        self.store = store
        self._batcher = batcher
        self._limits = limits
        self._clock = clock
        self._observer = observer
        self._cache = cache or UserStateCache(0)

    async def rank(self, query: RankQuery) -> Ranking:
        started = time.perf_counter()
        timeout_ms = query.timeout_ms or self._limits.default_timeout_ms
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000.0
        if not query.candidates:
            return self._ranking(query, [], [], Timings(0.0, 0.0, _elapsed_ms(started)), None)
        fetched, degraded = await self._fetch(query, deadline)
        fetch_ms = _elapsed_ms(started)
        breakdown = current_breakdown.get()
        if breakdown is not None:
            breakdown.fetch_ms = fetch_ms
        model_started = time.perf_counter()
        manifest = self.bundle.manifest
        real = real_behaviours(
            fetched,
            query.recent_events,
            manifest.max_lengths.sequence,
            now=int(self._clock()),
            as_of=query.as_of,
        )
        generated = generated_block(
            fetched.generated, manifest.max_lengths.generated, self.bundle.items.dim
        )
        result = await self._score(query, fetched, real.block, generated, deadline)
        top_k = query.top_k or self._limits.default_top_k
        rows = np.argsort(-result.scores, kind="stable")[:top_k]
        items = [ScoredItem(query.candidates[r], float(result.scores[r])) for r in rows]
        explanations = (
            explain(rows, query.candidates, result, real.block, generated)
            if query.explain
            else None
        )
        degraded += self._degradations(fetched, real, timed_out=bool(degraded))
        timings = Timings(fetch_ms, _elapsed_ms(model_started), _elapsed_ms(started))
        return self._ranking(query, items, degraded, timings, explanations)

    async def _score(
        self,
        query: RankQuery,
        fetched: FetchResult,
        real: BehaviourBlock,
        generated: BehaviourBlock,
        deadline: float | None,
    ) -> ScoreResult:
        """Score in the micro-batcher, with the user's encoded behaviours from the cache when
        they were computed from exactly these behaviours under this bundle."""
        request = ScoringRequest(
            fetched.candidate_vectors,
            real,
            generated,
            query.explain,
            candidate_ids=query.candidates,
        )
        if self._cache.enabled:
            request.user_key = UserKey(query.user_id, self.bundle.version)
            request.fingerprint = behaviours_fingerprint(real, generated)
            request.encoded = self._cache.get(request.user_key, request.fingerprint)
            self._observer.user_cache(hit=request.encoded is not None)
        result = await self._batcher.score(request, deadline)
        breakdown = current_breakdown.get()
        if breakdown is not None:
            breakdown.batch_wait_ms = request.waited_ms
            breakdown.batch_ms = request.batch_ms
            breakdown.batch_requests = request.batch_requests
            breakdown.scored_ms = request.scored_ms
            breakdown.scored_cpu_ms = request.scored_cpu_ms
        return result

    async def _fetch(
        self, query: RankQuery, deadline: float | None
    ) -> tuple[FetchResult, list[Degradation]]:
        """Fetch from the store within what is left of the budget; when the store is slow,
        unreachable or failing, fall back to the bundle's item table alone."""
        fetch_query = FetchQuery(query.user_id, query.candidates, query.recent_events.item_ids)
        with self._observer.stage(Stage.FETCH):
            try:
                if deadline is None:
                    fetched = await self.store.fetch(fetch_query)
                else:
                    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                        fetched = await self.store.fetch(fetch_query)
            except TimeoutError:
                self._observer.fetched(FetchOutcome.TIMEOUT, None)
                return self._table_only(fetch_query), [Degradation.STORE_TIMEOUT]
            except StoreError as error:
                outcome, reason = store_failure(error)
                self._observer.fetched(outcome, None)
                return self._table_only(fetch_query), [reason]
            except Exception:
                self._observer.fetched(FetchOutcome.ERROR, None)
                raise
        hit = fetched.sequence is not None
        self._observer.fetched(FetchOutcome.HIT if hit else FetchOutcome.MISS, fetched)
        return fetched, []

    def _table_only(self, query: FetchQuery) -> FetchResult:
        items = self.bundle.items
        candidate_vectors, candidate_known = items.lookup(query.candidate_ids)
        event_vectors, event_known = items.lookup(query.event_item_ids)
        return FetchResult(
            sequence=None,
            sequence_vectors=np.zeros((0, items.dim), np.float32),
            generated=None,
            candidate_vectors=candidate_vectors,
            candidate_known=candidate_known,
            event_item_vectors=event_vectors,
            event_item_known=event_known,
        )

    def _degradations(
        self, fetched: FetchResult, real: RealBehaviours, timed_out: bool
    ) -> list[Degradation]:
        reasons = []
        if not timed_out and not real.stored and real.block.length == 0:
            reasons.append(Degradation.UNKNOWN_USER)
        if not fetched.candidate_known.all():
            reasons.append(Degradation.UNKNOWN_ITEMS)
        if real.dropped_events:
            reasons.append(Degradation.UNKNOWN_EVENT_ITEMS)
        expects_generated = self.bundle.manifest.max_lengths.generated > 0
        if not timed_out and expects_generated and fetched.generated is None:
            reasons.append(Degradation.NO_GENERATED_BEHAVIOURS)
        return reasons

    def _ranking(
        self,
        query: RankQuery,
        items: list[ScoredItem],
        degraded: list[Degradation],
        timings: Timings,
        explanations: list | None,
    ) -> Ranking:
        return Ranking(
            request_id=query.request_id,
            bundle_version=self.bundle.version,
            items=items,
            degraded=degraded,
            timings_ms=timings,
            explanations=explanations,
        )
