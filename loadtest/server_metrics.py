"""The service's own view of a load test: ``/metrics`` scraped before and after, differenced.

Client-side percentiles include the load generator's own delays (on a small machine Locust
competes with the service for the CPU); the server's histograms do not. Quantiles are estimated
from bucket deltas the way PromQL's ``histogram_quantile`` does (linear within a bucket), so
they are only as fine as the buckets: see ``service.observability.metrics.LATENCY_BUCKETS_S``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

REQUEST_HISTOGRAM = "reaseq_request_duration_seconds"
STAGE_HISTOGRAM = "reaseq_stage_duration_seconds"
REQUESTS_COUNTER = "reaseq_requests_total"
ARM_REQUESTS_COUNTER = "reaseq_arm_requests_total"
RANK_ROUTE = "/v1/rank"

Sample = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Scrape:
    """Every sample of one ``/metrics`` answer, by name and sorted labels."""

    samples: Mapping[Sample, float]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        samples: dict[Sample, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return cls(samples)

    @classmethod
    def fetch(cls, base_url: str, timeout_s: float = 10.0) -> Scrape:
        response = httpx.get(f"{base_url.rstrip('/')}/metrics", timeout=timeout_s)
        response.raise_for_status()
        return cls.parse(response.text)

    def minus(self, before: Scrape) -> Scrape:
        return Scrape({k: v - before.samples.get(k, 0.0) for k, v in self.samples.items()})

    def select(self, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
        wanted = set(labels.items())
        return {
            key_labels: value
            for (sample_name, key_labels), value in self.samples.items()
            if sample_name == name and wanted <= set(key_labels)
        }


def buckets(delta: Scrape, histogram: str, **labels: str) -> list[tuple[float, float]]:
    """Cumulative ``(upper bound, count)`` pairs, summed over other labels, by bound."""
    by_bound: dict[float, float] = defaultdict(float)
    for key_labels, value in delta.select(f"{histogram}_bucket", **labels).items():
        by_bound[float(dict(key_labels)["le"])] += value
    return sorted(by_bound.items())


def histogram_quantile(q: float, cumulative: list[tuple[float, float]]) -> float | None:
    """PromQL's estimate: linear inside the bucket holding rank ``q * total``; None if empty."""
    if not cumulative or cumulative[-1][1] <= 0:
        return None
    total = cumulative[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in cumulative:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # beyond the last finite bucket: its bound, as PromQL does
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


@dataclass(frozen=True)
class ServerView:
    requests: int
    non_200: int
    quantiles_ms: dict[str, float | None]
    stage_mean_ms: dict[str, float]
    #: Answers per experiment arm (``experiment/arm``); empty without an experiment.
    arms: dict[str, int] = field(default_factory=dict)
    #: Of the non-200 answers: 429, load shedding.
    shed: int = 0


def server_view(before: Scrape, after: Scrape) -> ServerView:
    """What ``/v1/rank`` did between two scrapes, as the service measured it."""
    delta = after.minus(before)
    cumulative = buckets(delta, REQUEST_HISTOGRAM, route=RANK_ROUTE)
    quantiles = {}
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        value = histogram_quantile(q, cumulative)
        quantiles[name] = None if value is None else value * 1000.0
    statuses = delta.select(REQUESTS_COUNTER, route=RANK_ROUTE)
    total = sum(statuses.values())
    ok = sum(v for k, v in statuses.items() if dict(k).get("status") == "200")
    stage_sums = delta.select(f"{STAGE_HISTOGRAM}_sum")
    stage_counts = delta.select(f"{STAGE_HISTOGRAM}_count")
    stages = {}
    for key_labels, count in stage_counts.items():
        if count > 0:
            stages[dict(key_labels)["stage"]] = stage_sums.get(key_labels, 0.0) / count * 1000.0
    arms = {
        f"{dict(k).get('experiment')}/{dict(k).get('arm')}": int(v)
        for k, v in delta.select(ARM_REQUESTS_COUNTER).items()
        if v > 0
    }
    shed = sum(v for k, v in statuses.items() if dict(k).get("status") == "429")
    return ServerView(int(total), int(total - ok), quantiles, stages, arms, int(shed))
