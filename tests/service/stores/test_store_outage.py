"""A Redis that dies or stalls: /v1/rank answers degraded within its budget, the circuit breaker
opens (and stops paying a timeout per request), and answers are normal again once it is back."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from service.bundles.loaded import LoadedBundle
from tests.support.ports import free_port
from tests.support.redis_nodes import RedisProcess
from tests.support.serving import ADMIN_KEY, Serving
from tests.support.users import NOW, DemoUsers, write_redis

pytestmark = pytest.mark.anyio

STORE_BUDGET_MS = 50
COOL_DOWN_MS = 300
BREAKER = {
    "store": "redis",
    "redis_timeout_ms": STORE_BUDGET_MS,
    "store_breaker_failures": 2,
    "store_breaker_cool_down_ms": COOL_DOWN_MS,
}


@pytest.fixture
def own_redis(tmp_path: Path, bundle: LoadedBundle, users: DemoUsers) -> Iterator[RedisProcess]:
    """A redis-server of this test alone, seeded, which the test may kill and start again."""
    server = RedisProcess(tmp_path / "redis", free_port())
    server.start()
    write_redis(server.url, bundle, users)
    try:
        yield server
    finally:
        server.stop()


async def _rank(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post("/v1/rank", json={"user_id": "u1", "candidates": ["i1", "i3"]})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert [item["item_id"] for item in body["items"]] != []
    return body


def _metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    match = re.search(rf"^{name}\{{{re.escape(wanted)}\}} (\S+)$", text, re.MULTILINE)
    assert match, f"{name}{{{wanted}}} not exported"
    return float(match.group(1))


def _breaker(text: str) -> dict[str, float]:
    return {
        state: _metric(text, "reaseq_store_breaker_state", state=state, store="redis")
        for state in ("closed", "open", "half_open")
    }


def _entered(text: str, state: str) -> float:
    return _metric(text, "reaseq_store_breaker_transitions_total", state=state, store="redis")


async def test_killed_store_degrades_fast_then_recovers(
    serving: Serving, own_redis: RedisProcess, bundle: LoadedBundle, users: DemoUsers
) -> None:
    async with serving(redis_url=own_redis.url, **BREAKER) as client:
        assert "store_timeout" not in (await _rank(client))["degraded"]
        own_redis.stop(kill=True)
        answers = [await _rank(client) for _ in range(6)]
        # Refused connections, then the circuit they opened: unreachable, not slow.
        assert all(a["degraded"][0] == "store_unavailable" for a in answers)
        assert max(a["timings_ms"]["fetch"] for a in answers) < STORE_BUDGET_MS
        events = {"events": [{"item_id": "i1", "event": "click", "ts": NOW, "event_id": "e1"}]}
        refused = await client.post(
            "/v1/admin/users/u1/events", json=events, headers={"X-API-Key": ADMIN_KEY}
        )
        assert refused.status_code == 503
        assert refused.json()["code"] == "store_circuit_open"
        assert "next probe in" in refused.json()["detail"]
        text = (await client.get("/metrics")).text
        assert _breaker(text) == {"closed": 0, "open": 1, "half_open": 0}
        assert _entered(text, "open") == 1

        own_redis.start()
        write_redis(own_redis.url, bundle, users)
        await asyncio.sleep(COOL_DOWN_MS / 1000 + 0.05)
        assert not {"store_timeout", "store_unavailable"} & set((await _rank(client))["degraded"])
        text = (await client.get("/metrics")).text
        assert _breaker(text) == {"closed": 1, "open": 0, "half_open": 0}
        assert [_entered(text, s) for s in ("open", "half_open", "closed")] == [1, 1, 1]
        stored = await client.post(
            "/v1/admin/users/u1/events", json=events, headers={"X-API-Key": ADMIN_KEY}
        )
        assert stored.status_code == 200 and stored.json()["appended"] == 1


async def test_slow_store_answers_within_budget_degraded(
    serving: Serving, redis_url: str, bundle: LoadedBundle, users: DemoUsers
) -> None:
    write_redis(redis_url, bundle, users)
    admin = redis.Redis.from_url(redis_url)
    async with serving(redis_url=redis_url, **BREAKER) as client:
        assert "store_timeout" not in (await _rank(client))["degraded"]
        admin.execute_command("CLIENT", "PAUSE", "500", "ALL")
        answers = [await _rank(client) for _ in range(5)]
        assert all(a["degraded"][0] == "store_timeout" for a in answers)
        fetch_ms = [a["timings_ms"]["fetch"] for a in answers]
        # Two answers waited out the store's budget; then the open breaker answered at once.
        assert all(STORE_BUDGET_MS <= ms < STORE_BUDGET_MS + 250 for ms in fetch_ms[:2])
        assert max(fetch_ms[2:]) < STORE_BUDGET_MS
        text = (await client.get("/metrics")).text
        assert _breaker(text)["open"] == 1
        await asyncio.sleep(0.5 + COOL_DOWN_MS / 1000)
        assert "store_timeout" not in (await _rank(client))["degraded"]
        text = (await client.get("/metrics")).text
        assert _breaker(text)["closed"] == 1
    admin.close()
