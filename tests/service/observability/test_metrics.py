"""The metrics move as they should after real requests through the ASGI stack."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import redis

from service.bundles.loaded import LoadedBundle
from tests.support.exposition import names, value
from tests.support.serving import Serving
from tests.support.users import DemoUsers, write_redis

pytestmark = pytest.mark.anyio
SPLIT_STAGES = ("fetch", "user_encoder", "candidate_encoder", "attention", "scorer")
DEAD_REDIS = "redis://127.0.0.1:1/0"


async def _rank(client: httpx.AsyncClient, **body: object) -> httpx.Response:
    return await client.post("/v1/rank", json=body)


async def _metrics(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return response.text


async def test_requests_stages_batches_and_bundle(serving: Serving) -> None:
    async with serving() as client:
        for user in ("u1", "u2", "u1"):
            response = await _rank(client, user_id=user, candidates=["i1", "i3", "i5"])
            assert response.status_code == 200
        await _rank(client, user_id="")  # 422
        text = await _metrics(client)
    assert value(text, "reaseq_requests_total", route="/v1/rank", status="200") == 3
    assert value(text, "reaseq_requests_total", route="/v1/rank", status="422") == 1
    assert value(text, "reaseq_request_duration_seconds_count", route="/v1/rank") == 4
    for stage in (*SPLIT_STAGES, "serialisation"):
        assert value(text, "reaseq_stage_duration_seconds_count", stage=stage) == 3, stage
        assert value(text, "reaseq_stage_duration_seconds_sum", stage=stage) > 0, stage
    assert value(text, "reaseq_stage_duration_seconds_count", stage="full") == 0
    assert value(text, "reaseq_rank_candidates_count") == 3
    assert value(text, "reaseq_rank_candidates_sum") == 9
    # One request at a time: each is a batch of one, queued only while a thread picks it up.
    assert value(text, "reaseq_batch_size_count") == 3
    assert value(text, "reaseq_batch_size_sum") == 3
    assert value(text, "reaseq_batch_candidates_sum") == 9
    assert value(text, "reaseq_batch_wait_seconds_count") == 3
    assert value(text, "reaseq_batch_wait_seconds_sum") < 1.0
    assert value(text, "reaseq_user_cache_lookups_total", result="miss") >= 1
    assert value(text, "reaseq_user_cache_lookups_total", result="hit") >= 1
    assert value(text, "reaseq_user_cache_bytes") > 0
    assert value(text, "reaseq_scoring_queue_depth") == 0
    assert value(text, "reaseq_requests_in_flight") == 1  # the scrape itself
    assert value(text, "reaseq_bundle_info", version="test-1") == 1
    assert value(text, "reaseq_bundle_loads_total", result="success") == 1
    assert value(text, "reaseq_bundle_reloads_total", result="failure") == 0
    assert value(text, "reaseq_ready") == 1
    assert value(text, "reaseq_latency_objective_seconds") == 0.05
    assert value(text, "reaseq_request_duration_seconds_bucket", route="/v1/rank", le="0.05") > 0
    assert not {n for n in names(text) if n.startswith("reaseq_gpu")}, "no GPU series on CPU"


async def test_process_metrics_and_no_created_series(serving: Serving) -> None:
    async with serving() as client:
        await _rank(client, user_id="u1", candidates=["i1"])
        text = await _metrics(client)
    assert value(text, "process_cpu_seconds_total") > 0
    assert value(text, "process_resident_memory_bytes") > 0
    assert value(text, "process_start_time_seconds") > 0
    assert "python_info" in names(text)
    created = sorted(n for n in names(text) if n.endswith("_created"))
    assert created == [], created


async def test_full_graph_reports_the_full_stage(serving: Serving) -> None:
    async with serving(graph_mode="full") as client:
        await _rank(client, user_id="u1", candidates=["i1", "i3"])
        await _rank(client, user_id="u1", candidates=["i1", "i3"], explain=True)
        text = await _metrics(client)
    assert value(text, "reaseq_stage_duration_seconds_count", stage="full") == 1
    # Explanations need attention weights, which only the split graphs return.
    assert value(text, "reaseq_stage_duration_seconds_count", stage="attention") == 1


async def test_degraded_reasons_and_embedded_store_results(serving: Serving) -> None:
    async with serving() as client:
        await _rank(client, user_id="u1", candidates=["i1", "i3"])
        await _rank(client, user_id="nobody", candidates=["i1", "nope"])
        await _rank(
            client,
            user_id="u2",
            candidates=["i1"],
            recent_events=[{"item_id": "gone", "event": "click", "ts": 1_700_000_000}],
        )
        text = await _metrics(client)
    degraded = {
        reason: value(text, "reaseq_degraded_total", reason=reason)
        for reason in ("unknown_user", "unknown_items", "unknown_event_items", "store_timeout")
    }
    assert degraded == {
        "unknown_user": 1,
        "unknown_items": 1,
        "unknown_event_items": 1,
        "store_timeout": 0,
    }
    # u2 has no generated behaviours, and nobody has nothing at all.
    assert value(text, "reaseq_degraded_total", reason="no_generated_behaviours") == 2
    store = {"store": "embedded"}
    assert value(text, "reaseq_store_requests_total", result="hit", **store) == 2
    assert value(text, "reaseq_store_requests_total", result="miss", **store) == 1
    lookups = "reaseq_store_lookups_total"
    assert value(text, lookups, record="generated_behaviours", result="hit", **store) == 1
    assert value(text, lookups, record="generated_behaviours", result="miss", **store) == 2
    assert value(text, lookups, record="item_vector", result="hit", **store) == 4
    assert value(text, lookups, record="item_vector", result="miss", **store) == 2


async def test_redis_store_results_hit_miss_timeout(
    serving: Serving, redis_url: str, bundle: LoadedBundle, users: DemoUsers
) -> None:
    write_redis(redis_url, bundle, users)
    async with serving(store="redis", redis_url=redis_url, redis_timeout_ms=50) as client:
        await _rank(client, user_id="u1", candidates=["i1", "i3"])
        await _rank(client, user_id="nobody", candidates=["i1"])
        admin = redis.Redis.from_url(redis_url)
        admin.execute_command("CLIENT", "PAUSE", "300", "ALL")
        paused = await _rank(client, user_id="u1", candidates=["i1"])
        admin.close()
        text = await _metrics(client)
    assert paused.json()["degraded"][0] == "store_timeout"
    results = {
        r: value(text, "reaseq_store_requests_total", store="redis", result=r)
        for r in ("hit", "miss", "timeout", "unavailable", "error")
    }
    assert results == {"hit": 1, "miss": 1, "timeout": 1, "unavailable": 0, "error": 0}
    assert value(text, "reaseq_degraded_total", reason="store_timeout") == 1
    lookups = value(
        text, "reaseq_store_lookups_total", store="redis", record="user_sequence", result="hit"
    )
    assert lookups == 1


async def test_unreachable_redis_degrades_and_stays_ready(serving: Serving) -> None:
    async with serving(store="redis", redis_url=DEAD_REDIS, redis_timeout_ms=100) as client:
        response = await _rank(client, user_id="u1", candidates=["i1"])
        text = await _metrics(client)
    # Served degraded, from the bundle alone, and counted under its cause, not as a slow store.
    assert response.status_code == 200
    assert response.json()["degraded"] == ["store_unavailable"]
    assert value(text, "reaseq_store_requests_total", store="redis", result="unavailable") == 1
    assert value(text, "reaseq_store_requests_total", store="redis", result="timeout") == 0
    assert value(text, "reaseq_store_requests_total", store="redis", result="error") == 0
    assert value(text, "reaseq_degraded_total", reason="store_unavailable") == 1
    assert value(text, "reaseq_requests_total", route="/v1/rank", status="200") == 1
    assert value(text, "reaseq_ready") == 1
    assert value(text, "reaseq_store_up", store="redis") == 0


async def test_latency_objective_is_a_bucket_edge(serving: Serving) -> None:
    async with serving(latency_objective_ms=33) as client:
        await _rank(client, user_id="u1", candidates=["i1"])
        text = await _metrics(client)
    assert value(text, "reaseq_latency_objective_seconds") == pytest.approx(0.033)
    bucket = value(text, "reaseq_request_duration_seconds_bucket", route="/v1/rank", le="0.033")
    assert bucket >= 0 and "0.033" in text


async def test_bundle_load_failure_is_counted(tmp_path: Path) -> None:
    from service.app import create_app
    from service.errors import BundleNotFoundError
    from service.settings import Settings

    app = create_app(Settings(bundle_root=tmp_path))
    with pytest.raises(BundleNotFoundError):
        async with app.router.lifespan_context(app):
            pass
    text, _ = app.state.metrics.exposition()
    assert value(text.decode(), "reaseq_bundle_loads_total", result="not_found") == 1
