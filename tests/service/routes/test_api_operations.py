"""Health, readiness, metrics, the bundle endpoint, the docs, degraded stores and admin."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis

from service.app import create_app
from service.contracts.manifest import BundleIntegrityError
from service.errors import BundleNotFoundError
from service.ranking.scoring import GraphRunner
from service.settings import Settings
from tests.support.serving import ADMIN_KEY, Serving
from tests.support.users import NOW

pytestmark = pytest.mark.anyio
DEAD_REDIS = "redis://127.0.0.1:1/0"


async def test_livez_readyz_bundle(client: httpx.AsyncClient) -> None:
    assert (await client.get("/livez")).json() == {"status": "alive"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "bundle_version": "test-1", "store_reachable": True}
    manifest = (await client.get("/v1/bundle")).json()
    assert manifest["version"] == "test-1"
    assert manifest["dimensions"]["item_dim"] == 8


async def test_readiness_reports_warming_until_the_warm_up_finishes(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    warming, finish = threading.Event(), threading.Event()

    def slow_warm_up(_: GraphRunner) -> None:
        warming.set()
        finish.wait(timeout=30)

    monkeypatch.setattr(GraphRunner, "warm_up", slow_warm_up)
    app = create_app(make_settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rank") as client:
        lifespan = app.router.lifespan_context(app)
        starting = asyncio.create_task(lifespan.__aenter__())
        try:
            assert await asyncio.to_thread(warming.wait, 30)
            during = await client.get("/readyz")
            ranked = await client.post("/v1/rank", json={"user_id": "u1", "candidates": ["i1"]})
            gauge = (await client.get("/metrics")).text
        finally:
            finish.set()
            await starting
        after = await client.get("/readyz")
        await lifespan.__aexit__(None, None, None)
    assert during.status_code == 503
    assert during.json()["status"] == "not_ready"
    assert during.json()["reason"] == "bundle not warmed up"
    assert ranked.status_code == 503 and ranked.json()["code"] == "not_ready"
    assert "reaseq_ready 0.0" in gauge
    assert after.status_code == 200 and after.json()["status"] == "ready"


async def test_docs(serving: Serving) -> None:
    async with serving() as client:
        assert (await client.get("/docs")).status_code == 200
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/v1/rank", "/v1/bundle", "/readyz", "/v1/admin/users/{user_id}/events"} <= set(paths)


async def test_metrics(serving: Serving) -> None:
    async with serving() as client:
        await client.post("/v1/rank", json={"user_id": "nobody", "candidates": ["i1"]})
        await client.post("/v1/rank", json={"user_id": ""})
        text = (await client.get("/metrics")).text
    assert 'reaseq_requests_total{route="/v1/rank",status="200"} 1.0' in text
    assert 'reaseq_requests_total{route="/v1/rank",status="422"} 1.0' in text
    assert 'reaseq_request_duration_seconds_bucket{le="0.001",route="/v1/rank"}' in text
    assert 'reaseq_request_duration_seconds_bucket{le="0.1",route="/v1/rank"}' in text
    assert 'reaseq_degraded_total{reason="unknown_user"} 1.0' in text


async def test_dead_redis_stays_ready_and_ranks_degraded(serving: Serving) -> None:
    async with serving(store="redis", redis_url=DEAD_REDIS, redis_timeout_ms=100) as client:
        ready = await client.get("/readyz")
        # A store outage degrades answers; it must not take the replica out of service.
        assert ready.status_code == 200
        assert ready.json()["store_reachable"] is False
        response = await client.post("/v1/rank", json={"user_id": "u1", "candidates": ["i1"]})
        events = {"events": [{"item_id": "i1", "event": "click", "ts": NOW}]}
        append = await client.post(
            "/v1/admin/users/u1/events", json=events, headers={"X-API-Key": ADMIN_KEY}
        )
    assert response.status_code == 200
    assert response.json()["degraded"] == ["store_unavailable"]
    assert append.status_code == 503
    assert append.json()["code"] == "store_unavailable"
    assert "appending events" in append.json()["detail"]


async def test_store_timeout_degrades(serving: Serving, redis_url: str) -> None:
    async with serving(store="redis", redis_url=redis_url, redis_timeout_ms=50) as client:
        assert (await client.get("/readyz")).status_code == 200
        admin = redis.Redis.from_url(redis_url)
        admin.execute_command("CLIENT", "PAUSE", "300", "ALL")
        response = await client.post(
            "/v1/rank", json={"user_id": "u1", "candidates": ["i3", "i1", "zz"]}
        )
        await asyncio.sleep(0.3)
        admin.close()
    assert response.status_code == 200
    body = response.json()
    assert body["degraded"] == ["store_timeout", "unknown_items"]
    assert len(body["items"]) == 3


async def test_tampered_bundle_refuses_to_start(bundle_root: Path, tmp_path: Path) -> None:
    shutil.copytree(bundle_root / "test-1", tmp_path / "test-1")
    with (tmp_path / "test-1" / "scorer.onnx").open("ab") as handle:
        handle.write(b"tampered")
    app = create_app(Settings(bundle_root=tmp_path, bundle_version="test-1"))
    with pytest.raises(BundleIntegrityError, match=r"scorer\.onnx"):
        async with app.router.lifespan_context(app):
            pass


async def test_missing_bundle_version_is_explained(tmp_path: Path) -> None:
    app = create_app(Settings(bundle_root=tmp_path))
    with pytest.raises(BundleNotFoundError, match=r"REASEQ_BUNDLE_VERSION"):
        async with app.router.lifespan_context(app):
            pass


async def test_admin_disabled_without_a_key(serving: Serving) -> None:
    async with serving(admin_api_key=None) as client:
        response = await client.post(
            "/v1/admin/users/u1/events", json={"events": []}, headers={"X-API-Key": "x"}
        )
    assert response.status_code == 404
    assert "REASEQ_ADMIN_API_KEY" in response.json()["detail"]


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}])
async def test_admin_rejects_a_wrong_key(serving: Serving, headers: dict[str, str]) -> None:
    async with serving() as client:
        response = await client.post("/v1/admin/users/u1/events", json={}, headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


async def test_admin_appends_events(client: httpx.AsyncClient) -> None:
    events = [{"item_id": "i7", "event": "purchase", "ts": NOW + n} for n in range(3)]
    response = await client.post(
        "/v1/admin/users/newcomer/events", json={"events": events}, headers={"X-API-Key": ADMIN_KEY}
    )
    assert response.status_code == 200
    assert response.json() == {
        "user_id": "newcomer",
        "appended": 3,
        "duplicates": 0,
        "sequence_length": 3,
    }
    ranked = (
        await client.post("/v1/rank", json={"user_id": "newcomer", "candidates": ["i1", "i7"]})
    ).json()
    assert [item["item_id"] for item in ranked["items"]] == ["i7", "i1"]
    assert "unknown_user" not in ranked["degraded"]
    bad = await client.post(
        "/v1/admin/users/newcomer/events",
        json={"events": [{"item_id": "i7", "event": "like", "ts": NOW}]},
        headers={"X-API-Key": ADMIN_KEY},
    )
    assert bad.status_code == 422
