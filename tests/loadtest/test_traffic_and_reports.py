"""The traffic model, the load shapes and the server-side quantile estimate."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from loadtest.locust_results import client_view
from loadtest.report import Gates, check_gates
from loadtest.run import duration_seconds
from loadtest.server_metrics import Scrape, histogram_quantile, server_view
from loadtest.shapes import LoadShape, plan
from loadtest.traffic import CandidateCounts, Traffic, TrafficConfig


def _traffic(**config: object) -> Traffic:
    items = np.asarray([f"i{n}" for n in range(1000)])
    users = np.asarray([f"u{n}" for n in range(500)])
    return Traffic(TrafficConfig(**config), items, users)  # type: ignore[arg-type]


def test_requests_are_valid_and_users_skewed() -> None:
    traffic = _traffic(candidates="uniform:10:50", recent_events_ratio=0.5, explain_ratio=0.1)
    rng = np.random.default_rng(1)
    bodies = [traffic.request(rng, now=1_764_000_000) for _ in range(2000)]
    for body in bodies:
        assert 10 <= len(body["candidates"]) <= 50
        assert len(set(body["candidates"])) == len(body["candidates"])
        for event in body.get("recent_events", []):
            assert event["event"] in {"click", "cart", "purchase"}
            assert event["ts"] <= 1_764_000_000
    with_events = sum("recent_events" in b for b in bodies) / len(bodies)
    explained = sum(b.get("explain", False) for b in bodies) / len(bodies)
    assert 0.45 < with_events < 0.55 and 0.07 < explained < 0.13
    top = Counter(b["user_id"] for b in bodies).most_common(1)[0][1]
    assert top > 2000 / 500 * 10, "Zipf: the top user asks far more than an average one"


def test_candidate_count_specs() -> None:
    rng = np.random.default_rng(0)
    assert CandidateCounts.parse("fixed:500").sample(rng, 100) == 100  # clipped to the items
    counts = [CandidateCounts.parse("lognormal:200:0.5").sample(rng, 2000) for _ in range(500)]
    assert 150 < float(np.median(counts)) < 250
    with pytest.raises(ValueError, match="uniform:LO:HI"):
        CandidateCounts.parse("poisson:3")


def test_shapes() -> None:
    assert plan(LoadShape.soak, 5, 10, 20, 5) == (20, 5)
    assert plan(LoadShape.soak, 10, 10, 20, 5) is None
    assert [plan("step", t, 40, 20, 5) for t in (0, 10, 20, 39)] == [
        (5, 5), (10, 5), (15, 5), (20, 5),
    ]  # fmt: skip
    assert plan("spike", 1, 10, 20, 5) == (5, 5)
    assert plan("spike", 5, 10, 20, 5) == (20, 20.0)
    assert plan("spike", 8, 10, 20, 5) == (5, 5)


def test_histogram_quantile_matches_promql() -> None:
    cumulative = [(0.01, 50.0), (0.02, 90.0), (0.05, 100.0), (float("inf"), 100.0)]
    assert histogram_quantile(0.5, cumulative) == pytest.approx(0.01)
    assert histogram_quantile(0.7, cumulative) == pytest.approx(0.015)
    assert histogram_quantile(0.99, cumulative) == pytest.approx(0.047)
    assert histogram_quantile(0.5, [(float("inf"), 0.0)]) is None
    beyond = [(0.01, 1.0), (float("inf"), 10.0)]
    assert histogram_quantile(0.99, beyond) == 0.01


def test_server_view_differences_two_scrapes() -> None:
    def exposition(fast: int, slow: int, errors: int) -> Scrape:
        route = 'route="/v1/rank"'
        return Scrape.parse(
            "# TYPE reaseq_request_duration_seconds histogram\n"
            f'reaseq_request_duration_seconds_bucket{{le="0.01",{route}}} {fast}\n'
            f'reaseq_request_duration_seconds_bucket{{le="0.1",{route}}} {fast + slow}\n'
            f'reaseq_request_duration_seconds_bucket{{le="+Inf",{route}}} {fast + slow}\n'
            f"reaseq_request_duration_seconds_count{{{route}}} {fast + slow}\n"
            f"reaseq_request_duration_seconds_sum{{{route}}} 1\n"
            "# TYPE reaseq_requests_total counter\n"
            f'reaseq_requests_total{{{route},status="200"}} {fast + slow - errors}\n'
            f'reaseq_requests_total{{{route},status="503"}} {errors}\n'
        )

    view = server_view(exposition(100, 0, 0), exposition(200, 100, 3))
    assert view.requests == 200 and view.non_200 == 3
    assert view.quantiles_ms["p50"] == pytest.approx(10.0)
    # rank 198 of 200: 98 of the 100 requests into the (10 ms, 100 ms] bucket.
    assert view.quantiles_ms["p99"] == pytest.approx(98.2)


def test_durations() -> None:
    assert [duration_seconds(t) for t in ("30", "30s", "2m", "1h30m")] == [30, 30, 120, 5400]


def test_shed_requests_are_counted_apart_and_gated(tmp_path: Path) -> None:
    prefix = tmp_path / "locust"
    Path(f"{prefix}_stats.csv").write_text(
        "Type,Name,Request Count,Failure Count,Requests/s,50%,95%,99%\n"
        "POST,/v1/rank,1000,60,100.0,20,30,40\n"
        ",Aggregated,1000,60,100.0,20,30,40\n"
    )
    Path(f"{prefix}_failures.csv").write_text(
        "Method,Name,Error,Occurrences\n"
        "POST,/v1/rank,\"CatchResponseError('status 429: overloaded')\",50\n"
        "POST,/v1/rank,\"CatchResponseError('status 503: not ready')\",10\n"
    )
    client = client_view(prefix)
    assert client.shed == 50 and client.failures == 60
    assert client.failure_ratio == pytest.approx(0.01)
    assert client.shed_ratio == pytest.approx(0.05)
    results = {r.name: r.passed for r in check_gates(Gates(100.0, 0.01, 0.04), client)}
    assert results == {"p99_ms": True, "failure_ratio": True, "shed_ratio": False}
    Path(f"{prefix}_failures.csv").unlink()
    assert client_view(prefix).shed == 0
