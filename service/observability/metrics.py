"""The service's Prometheus metrics: one class holding every family, and their exposition.

Names follow Prometheus conventions (``reaseq_`` prefix, base units, ``_total`` counters) and no
label carries a user or item ID, so the series count stays fixed whatever the traffic.

Several worker processes (``REASEQ_WORKERS`` > 1) each count their own requests. With
``PROMETHEUS_MULTIPROC_DIR`` set, prometheus-client keeps every value in a per-process file there
and ``/metrics`` merges the files of all workers, so whichever worker answers the scrape reports
the totals. Each gauge says how to merge (``multiprocess_mode``); the files of live-merged gauges
of dead workers are removed on every scrape (:mod:`service.observability.multiprocess`), while
counters of dead workers stay, as a counter must never go down.

Beside the service's own families, ``/metrics`` has the standard ``process_*`` (CPU, memory, open
files, start time; one set per live worker, labelled ``pid``, with several workers) and
``python_info``. No ``_created`` series: they double the counters and histograms for a start time
that ``process_start_time_seconds`` already gives.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from service.observability.experiment_metrics import ExperimentMetrics
from service.observability.multiprocess import WorkerProcessCollector, reap_dead_workers
from service.observability.prediction_log_metrics import PredictionLogMetrics
from service.ranking.observer import FetchOutcome, Stage
from service.ranking.result import Degradation
from service.stores.breaker import BreakerState

log = logging.getLogger(__name__)

# Process-wide in prometheus-client, and the service's only exposition is this module's.
disable_created_metrics()

DEFAULT_LATENCY_OBJECTIVE_S = 0.05
#: Dense between 1 ms and 100 ms, where rank latencies and their objective live.
LATENCY_BUCKETS_S = (
    0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02, 0.025,
    0.03, 0.04, 0.05, 0.06, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
#: Stages are a fraction of a request: finer at the bottom.
STAGE_BUCKETS_S = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015,
    0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip
CANDIDATE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
BATCH_CANDIDATE_BUCKETS = (100, 250, 500, 1000, 2000, 4000, 8000)
BATCH_WAIT_BUCKETS_S = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1)
STORE_RECORDS = ("user_sequence", "generated_behaviours", "item_vector")
BUNDLE_LOAD_RESULTS = ("success", "not_found", "integrity_error", "error")
BUNDLE_RELOAD_RESULTS = ("success", "failure")
BUNDLE_ACTIVATION_TRIGGERS = ("admin", "rollback", "watch")
BUNDLE_ACTIVATION_RESULTS = (
    "success", "unchanged", "not_found", "corrupt", "incompatible", "store_unavailable", "error",
)  # fmt: skip
SHED_REASONS = ("queue_full", "queue_timeout", "queue_standing", "key_limit")
CONNECTION_DROP_REASONS = ("header_timeout", "headers_too_large", "evicted", "refused")


def latency_buckets(objective_s: float) -> tuple[float, ...]:
    """The request buckets with one edge exactly at the latency objective, so the share of
    requests within it is read from a bucket, not interpolated."""
    return tuple(sorted({*LATENCY_BUCKETS_S, round(objective_s, 6)}))


class ServiceMetrics:
    """Every metric family of the service, on its own registry so apps in one process
    (tests) do not share state."""

    def __init__(
        self,
        latency_objective_s: float = DEFAULT_LATENCY_OBJECTIVE_S,
        multiprocess_dir: Path | None = None,
    ) -> None:
        if multiprocess_dir is not None and values.ValueClass is values.MutexValue:
            raise ValueError(
                f"metrics directory {multiprocess_dir} given, but prometheus-client was imported "
                "without PROMETHEUS_MULTIPROC_DIR set: set the variable before the process starts"
            )
        self.registry = CollectorRegistry()
        self.multiprocess_dir = multiprocess_dir
        self.latency_objective_s = latency_objective_s
        self._extra_collectors: list[Collector] = []
        self._http_families()
        self._ranking_families()
        self._store_families()
        self._bundle_families()
        self._admission_families()
        self._process_collectors()
        self._connection_families()
        self.prediction_log = PredictionLogMetrics(self.registry)
        self.experiments = ExperimentMetrics(
            self.registry, latency_buckets(self.latency_objective_s)
        )

    def _http_families(self) -> None:
        registry = self.registry
        self.requests = Counter(
            "reaseq_requests_total",
            "HTTP requests by route template and status code.",
            ["route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "reaseq_request_duration_seconds",
            "HTTP request latency by route template, from the first byte in to the last out.",
            ["route"],
            buckets=latency_buckets(self.latency_objective_s),
            registry=registry,
        )
        self.in_flight = Gauge(
            "reaseq_requests_in_flight",
            "HTTP requests being served now, summed over live workers.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.latency_objective = Gauge(
            "reaseq_latency_objective_seconds",
            "The configured latency objective of /v1/rank (REASEQ_LATENCY_OBJECTIVE_MS).",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.latency_objective.set(self.latency_objective_s)

    def _ranking_families(self) -> None:
        registry = self.registry
        self.stage_duration = Histogram(
            "reaseq_stage_duration_seconds",
            "Time of each ranking stage; the full-graph mode reports the stage 'full'.",
            ["stage"],
            buckets=STAGE_BUCKETS_S,
            registry=registry,
        )
        self.candidates = Histogram(
            "reaseq_rank_candidates",
            "Candidates per rank request.",
            buckets=CANDIDATE_BUCKETS,
            registry=registry,
        )
        self.degraded = Counter(
            "reaseq_degraded_total",
            "Rankings served degraded, by reason (one ranking may count under several).",
            ["reason"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "reaseq_batch_size",
            "Requests per scoring batch of the micro-batcher.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.batch_candidates = Histogram(
            "reaseq_batch_candidates",
            "Candidates per scoring batch of the micro-batcher.",
            buckets=BATCH_CANDIDATE_BUCKETS,
            registry=registry,
        )
        self.batch_wait = Histogram(
            "reaseq_batch_wait_seconds",
            "Time a request queued before a scoring thread took its batch.",
            buckets=BATCH_WAIT_BUCKETS_S,
            registry=registry,
        )
        self.user_cache_lookups = Counter(
            "reaseq_user_cache_lookups_total",
            "Lookups of the per-user cache of encoded behaviours, by result (hit, miss).",
            ["result"],
            registry=registry,
        )
        self.user_cache_bytes = Gauge(
            "reaseq_user_cache_bytes",
            "Bytes held by the per-user cache of encoded behaviours, summed over live workers.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.queue_depth = Gauge(
            "reaseq_scoring_queue_depth",
            "Rank requests waiting for a scoring thread, summed over live workers.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        for stage in Stage:
            self.stage_duration.labels(stage=stage.value)
        for reason in Degradation:
            self.degraded.labels(reason=reason.value)
        for result in ("hit", "miss"):
            self.user_cache_lookups.labels(result=result)

    def _store_families(self) -> None:
        self.store_requests = Counter(
            "reaseq_store_requests_total",
            "Store fetches by backend and result: hit (user known), miss, timeout, unavailable "
            "(not reached), error (an error reply).",
            ["store", "result"],
            registry=self.registry,
        )
        self.store_lookups = Counter(
            "reaseq_store_lookups_total",
            "Records looked up in the store by kind and result (item vectors count one each).",
            ["store", "record", "result"],
            registry=self.registry,
        )
        self.store_breaker_state = Gauge(
            "reaseq_store_breaker_state",
            "The store's circuit breaker: 1 for the state it is in (closed, open, half_open); "
            "the max over live workers, so open shows 1 while any worker's circuit is open.",
            ["store", "state"],
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.store_breaker_transitions = Counter(
            "reaseq_store_breaker_transitions_total",
            "Changes of state of the store's circuit breaker, by the state entered.",
            ["store", "state"],
            registry=self.registry,
        )

    def _bundle_families(self) -> None:
        registry = self.registry
        self.bundle_info = Gauge(
            "reaseq_bundle_info",
            "The bundle being served: 1 for its version.",
            ["version"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.bundle_loads = Counter(
            "reaseq_bundle_loads_total",
            "Bundle loads at start-up (read, verify, warm up) by result.",
            ["result"],
            registry=registry,
        )
        self.bundle_reloads = Counter(
            "reaseq_bundle_reloads_total",
            "Swaps of the served bundle without a restart, by result (success, failure).",
            ["result"],
            registry=registry,
        )
        self.bundle_activations = Counter(
            "reaseq_bundle_activations_total",
            "Bundle activations by trigger (admin, rollback, watch) and result.",
            ["trigger", "result"],
            registry=registry,
        )
        self.ready = Gauge(
            "reaseq_ready",
            "1 when the service would answer /readyz with 200; the minimum over live workers.",
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.store_up = Gauge(
            "reaseq_store_up",
            "1 when the store answered the last readiness or scrape ping; the minimum over live "
            "workers. Not part of readiness: without the store, answers are degraded.",
            ["store"],
            registry=registry,
            multiprocess_mode="livemin",
        )
        for result in BUNDLE_LOAD_RESULTS:
            self.bundle_loads.labels(result=result)
        for result in BUNDLE_RELOAD_RESULTS:
            self.bundle_reloads.labels(result=result)
        for trigger in BUNDLE_ACTIVATION_TRIGGERS:
            for result in BUNDLE_ACTIVATION_RESULTS:
                self.bundle_activations.labels(trigger=trigger, result=result)

    def _admission_families(self) -> None:
        registry = self.registry
        self.rank_in_flight = Gauge(
            "reaseq_rank_in_flight",
            "Admission slots held by rank requests admitted and not yet answered (one per "
            "REASEQ_RANK_SLOT_BODY_BYTES of body, at least one), summed over live workers.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.rank_queued = Gauge(
            "reaseq_rank_queued",
            "Rank requests waiting for admission, summed over live workers.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.rank_shed = Counter(
            "reaseq_rank_shed_total",
            "Rank requests answered 429 by reason: queue_full (at once), queue_timeout (waited), "
            "queue_standing (let go from a queue that stands under sustained overload), "
            "key_limit (the API key holds its share of the slots and queue places).",
            ["reason"],
            registry=registry,
        )
        for reason in SHED_REASONS:
            self.rank_shed.labels(reason=reason)

    def _connection_families(self) -> None:
        registry = self.registry
        self.connections_open = Gauge(
            "reaseq_http_connections_open",
            "HTTP connections open now, summed over live workers.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.connections_dropped = Counter(
            "reaseq_http_connections_dropped_total",
            "HTTP connections the server closed by reason: header_timeout (headers not in "
            "within REASEQ_HEADER_READ_TIMEOUT_MS), headers_too_large (answered 431: headers "
            "over REASEQ_MAX_HEADER_BYTES), evicted (the longest idle one, for a new one at the "
            "cap), refused (a new one at the cap, none idle).",
            ["reason"],
            registry=registry,
        )
        for reason in CONNECTION_DROP_REASONS:
            self.connections_dropped.labels(reason=reason)

    def _process_collectors(self) -> None:
        # Several workers: one set per live worker, since the files hold no process metrics.
        if self.multiprocess_dir is None:
            self.add_collector(ProcessCollector(registry=None))
        else:
            self.add_collector(WorkerProcessCollector(self.multiprocess_dir))
        self.add_collector(PlatformCollector(registry=None))

    def init_store(self, store: str) -> None:
        """Create the store's series at zero, so rates and ratios exist before the first error."""
        for outcome in FetchOutcome:
            self.store_requests.labels(store=store, result=outcome.value)
        for record in STORE_RECORDS:
            for result in ("hit", "miss"):
                self.store_lookups.labels(store=store, record=record, result=result)

    def breaker_state(self, store: str, state: BreakerState, entered: bool = True) -> None:
        """The store's breaker is in ``state`` (counted as a transition when ``entered``)."""
        for each in BreakerState:
            self.store_breaker_state.labels(store=store, state=each.value).set(each is state)
            self.store_breaker_transitions.labels(store=store, state=each.value)
        if entered:
            self.store_breaker_transitions.labels(store=store, state=state.value).inc()

    def bundle_served(self, version: str, previous: str | None = None) -> None:
        if previous is not None and previous != version:
            self.bundle_info.labels(version=previous).set(0)
        self.bundle_info.labels(version=version).set(1)

    def add_collector(self, collector: Collector) -> None:
        """A collector computed at scrape time (GPU memory), shown by this process's scrape."""
        self._extra_collectors.append(collector)
        if self.multiprocess_dir is None:
            self.registry.register(collector)

    def exposition(self) -> tuple[bytes, str]:
        """The body and content type of ``/metrics``: all workers' values in multiprocess mode."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        reap_dead_workers(self.multiprocess_dir)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.multiprocess_dir))
        for collector in self._extra_collectors:
            registry.register(collector)
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def close(self) -> None:
        """This worker is stopping: its live gauges must stop counting."""
        if self.multiprocess_dir is not None:
            mark_process_dead(os.getpid(), str(self.multiprocess_dir))
