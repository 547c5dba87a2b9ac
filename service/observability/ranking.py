"""The ranking pipeline's observer in the running service: Prometheus metrics and tracing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from service.observability.metrics import ServiceMetrics
from service.observability.tracing import StageTracer
from service.ranking.observer import FetchOutcome, Stage
from service.stores.base import FetchResult, RankingStore


class ServiceObserver:
    """Times stages into ``reaseq_stage_duration_seconds`` (and a span each), counts store
    outcomes under the backend's name, and tracks the scoring queue."""

    def __init__(self, metrics: ServiceMetrics, tracer: StageTracer, store: str) -> None:
        self._metrics = metrics
        self._tracer = tracer
        self._store = store
        # Label lookups cost more than the observation: bind every child once.
        self._stage_timers = {s: metrics.stage_duration.labels(stage=s.value) for s in Stage}
        self._fetches = {
            o: metrics.store_requests.labels(store=store, result=o.value) for o in FetchOutcome
        }
        self._cache_lookups = {
            True: metrics.user_cache_lookups.labels(result="hit"),
            False: metrics.user_cache_lookups.labels(result="miss"),
        }
        metrics.init_store(store)

    @contextmanager
    def stage(self, stage: Stage) -> Iterator[None]:
        with self._tracer.span(f"rank.{stage.value}"):
            started = time.perf_counter()
            try:
                yield
            finally:
                self._stage_timers[stage].observe(time.perf_counter() - started)

    def fetched(self, outcome: FetchOutcome, result: FetchResult | None) -> None:
        self._fetches[outcome].inc()
        if result is None:
            return
        lookups = self._metrics.store_lookups
        store = self._store
        sequence = "hit" if result.sequence is not None else "miss"
        generated = "hit" if result.generated is not None else "miss"
        lookups.labels(store=store, record="user_sequence", result=sequence).inc()
        lookups.labels(store=store, record="generated_behaviours", result=generated).inc()
        known = int(result.candidate_known.sum()) + int(result.event_item_known.sum())
        asked = len(result.candidate_known) + len(result.event_item_known)
        if known:
            lookups.labels(store=store, record="item_vector", result="hit").inc(known)
        if asked - known:
            lookups.labels(store=store, record="item_vector", result="miss").inc(asked - known)

    def scoring_queued(self) -> None:
        self._metrics.queue_depth.inc()

    def batch_started(self, requests: int, candidates: int) -> None:
        self._metrics.batch_size.observe(requests)
        self._metrics.batch_candidates.observe(candidates)

    def scoring_started(self, waited_s: float) -> None:
        self._metrics.queue_depth.dec()
        self._metrics.batch_wait.observe(waited_s)

    def scoring_abandoned(self) -> None:
        self._metrics.queue_depth.dec()

    def user_cache(self, hit: bool) -> None:
        self._cache_lookups[hit].inc()


def observe_breaker(store: RankingStore, metrics: ServiceMetrics, name: str) -> None:
    """Keep the state of the store's circuit breaker, and its changes, in the metrics under the
    backend's ``name`` (nothing for a store without a breaker)."""
    breaker = store.breaker
    if breaker is None:
        return
    metrics.breaker_state(name, breaker.state, entered=False)
    breaker.on_transition(lambda _old, new: metrics.breaker_state(name, new))
