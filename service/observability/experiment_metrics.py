"""The metrics of experiments: per arm requests, latency, degradations and scores; the shadow
arms' dropped and failed scorings; the memory of each extra bundle.

They live on the service's registry (:class:`service.observability.metrics.ServiceMetrics`
creates them). Series exist only while an experiment runs (or ran, for counters): the labels are
the experiment's and its arms' names, a handful at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values

from service.ranking.result import Degradation, Ranking

#: Scores are probabilities: twenty equal bins between 0 and 1.
SCORE_BUCKETS = tuple(round(0.05 * n, 2) for n in range(1, 21))
ARM_LABELS = ("experiment", "arm")


@dataclass(frozen=True, slots=True)
class ArmMetrics:
    """The series of one arm, bound once (label lookups cost more than the observations)."""

    requests: Counter
    duration: Histogram
    score: Histogram
    degraded: dict[Degradation, Counter]

    def answered(self, ranking: Ranking, seconds: float) -> None:
        self.requests.inc()
        self.duration.observe(seconds)
        observe_scores(self.score, ranking)
        for reason in ranking.degraded:
            self.degraded[reason].inc()


@dataclass(frozen=True, slots=True)
class ShadowMetrics:
    """The series of one shadow arm."""

    score: Histogram
    dropped: Counter
    errors: Counter


class ExperimentMetrics:
    """Every experiment family, on ``registry``."""

    def __init__(self, registry: CollectorRegistry, latency_buckets: Sequence[float]) -> None:
        self.arm_requests = Counter(
            "reaseq_arm_requests_total",
            "Rank requests answered by each arm of the running experiment.",
            ARM_LABELS,
            registry=registry,
        )
        self.arm_duration = Histogram(
            "reaseq_arm_request_duration_seconds",
            "Time of each arm's ranking (store fetch, scoring, top-k), by experiment and arm.",
            ARM_LABELS,
            buckets=latency_buckets,
            registry=registry,
        )
        self.arm_degraded = Counter(
            "reaseq_arm_degraded_total",
            "Each arm's rankings served degraded, by reason.",
            (*ARM_LABELS, "reason"),
            registry=registry,
        )
        self.arm_score = Histogram(
            "reaseq_arm_score",
            "Scores each arm returned (every item of every answer; shadow arms' too): the "
            "score distribution per arm.",
            ARM_LABELS,
            buckets=SCORE_BUCKETS,
            registry=registry,
        )
        self.shadow_dropped = Counter(
            "reaseq_shadow_dropped_total",
            "Shadow scorings dropped because the shadow queue (REASEQ_SHADOW_QUEUE_SIZE) was full.",
            ARM_LABELS,
            registry=registry,
        )
        self.shadow_errors = Counter(
            "reaseq_shadow_errors_total",
            "Shadow scorings that failed (the answer to the caller was not affected).",
            ARM_LABELS,
            registry=registry,
        )
        self.bundle_memory = Gauge(
            "reaseq_experiment_bundle_memory_bytes",
            "Growth of the resident set when the arm's bundle was loaded, warmed and probed (arms "
            "sharing a bundle version share one copy: each shows it); the max over live workers.",
            ARM_LABELS,
            registry=registry,
            multiprocess_mode="livemax",
        )

    def arm(self, experiment: str, arm: str) -> ArmMetrics:
        degraded = self.arm_degraded
        return ArmMetrics(
            requests=self.arm_requests.labels(experiment, arm),
            duration=self.arm_duration.labels(experiment, arm),
            score=self.arm_score.labels(experiment, arm),
            degraded={r: degraded.labels(experiment, arm, r.value) for r in Degradation},
        )

    def shadow(self, experiment: str, arm: str) -> ShadowMetrics:
        return ShadowMetrics(
            score=self.arm_score.labels(experiment, arm),
            dropped=self.shadow_dropped.labels(experiment, arm),
            errors=self.shadow_errors.labels(experiment, arm),
        )

    def bundle_loaded(self, experiment: str, arm: str, resident_bytes: int | None) -> None:
        if resident_bytes is not None:
            self.bundle_memory.labels(experiment, arm).set(resident_bytes)

    def bundle_retired(self, experiment: str, arm: str) -> None:
        """The arm's bundle is gone: its memory series goes to 0, and away where one process
        keeps the values (several workers' files cannot forget a series)."""
        self.bundle_memory.labels(experiment, arm).set(0)
        if values.ValueClass is values.MutexValue:
            self.bundle_memory.remove(experiment, arm)


def observe_scores(histogram: Histogram, ranking: Ranking) -> None:
    """Every returned score into ``histogram`` (a bound child) at once.

    ``Histogram.observe`` takes one value at a time, a lock and a loop over the buckets each:
    thousands per answer would cost more than the ranking. The counts per bucket are computed
    with NumPy and added to the child's bucket values, as ``observe`` adds them one by one."""
    if not ranking.items:
        return
    scores = np.fromiter((item.score for item in ranking.items), np.float64, len(ranking.items))
    bounds = histogram._upper_bounds  # the buckets' upper edges, +Inf last
    counts = np.bincount(np.searchsorted(bounds, scores, side="left"), minlength=len(bounds))
    for index, count in enumerate(counts[: len(bounds)].tolist()):
        if count:
            histogram._buckets[index].inc(count)
    histogram._sum.inc(float(scores.sum()))
