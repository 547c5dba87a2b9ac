"""A store failure is reported by its cause: slow (timeout), not reached (unavailable: a refused
connection, an unknown host), or an error reply. Each is served degraded under its own reason,
counted under its own result, and readiness names it while the service stays ready."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import redis

from service.bundles.loaded import LoadedBundle
from service.contracts import keys
from service.errors import StoreError, StoreTimeout, StoreUnavailable
from service.stores.base import FetchQuery
from service.stores.config import RedisStoreConfig
from service.stores.redis import RedisStore
from tests.support.exposition import value
from tests.support.ports import free_port
from tests.support.serving import Serving
from tests.support.users import DemoUsers, write_redis

pytestmark = pytest.mark.anyio

RESULTS = ("hit", "miss", "timeout", "unavailable", "error")


def _closed_port_url() -> str:
    """A loopback port nothing listens on: connections to it are refused."""
    return f"redis://127.0.0.1:{free_port()}/0"


async def _rank(client: httpx.AsyncClient) -> httpx.Response:
    response = await client.post("/v1/rank", json={"user_id": "u1", "candidates": ["i1", "i3"]})
    assert response.status_code == 200, response.text
    return response


async def _results(client: httpx.AsyncClient) -> dict[str, float]:
    text = (await client.get("/metrics")).text
    return {r: value(text, "reaseq_store_requests_total", store="redis", result=r) for r in RESULTS}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (_closed_port_url(), "Error 111 connecting"),
        ("redis://no-such-host.invalid:6379/0", "no-such-host.invalid"),
    ],
    ids=["refused", "unknown-host"],
)
async def test_unreachable_store_raises_unavailable(
    bundle: LoadedBundle, url: str, message: str
) -> None:
    store = RedisStore.open(RedisStoreConfig(url=url, timeout_ms=1000), bundle)
    with pytest.raises(StoreUnavailable, match=message):
        await store.fetch(FetchQuery("u1", ["i1"]))
    problem = await store.check()
    assert isinstance(problem, StoreUnavailable) and "unreachable" in problem.message
    await store.close()


async def test_error_reply_is_neither_a_timeout_nor_unreachable(
    redis_url: str, bundle: LoadedBundle, users: DemoUsers
) -> None:
    write_redis(redis_url, bundle, users)
    admin = redis.Redis.from_url(redis_url)
    admin.set(keys.user_sequence_key("u1"), b"not a hash")  # HMGET answers WRONGTYPE
    store = RedisStore.open(RedisStoreConfig(url=redis_url, timeout_ms=1000), bundle)
    with pytest.raises(StoreError, match=r"answered an error.*WRONGTYPE") as raised:
        await store.fetch(FetchQuery("u1", ["i1"]))
    assert not isinstance(raised.value, StoreTimeout | StoreUnavailable)
    assert await store.check() is None  # the server itself answers
    await store.close()
    admin.close()


async def test_unreachable_store_degrades_as_unavailable_and_readiness_says_so(
    serving: Serving,
) -> None:
    async with serving(store="redis", redis_url=_closed_port_url(), redis_timeout_ms=200) as client:
        response = await _rank(client)
        ready = await client.get("/readyz")
        results = await _results(client)
    assert response.json()["degraded"] == ["store_unavailable"]
    assert [item["item_id"] for item in response.json()["items"]]  # scored from the bundle
    assert results == {"hit": 0, "miss": 0, "timeout": 0, "unavailable": 1, "error": 0}
    # Still ready (a store outage must not take every replica out), and says why it degrades.
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["store_reachable"] is False
    assert body["store_error"]["code"] == "store_unavailable"
    assert "Error 111 connecting to 127.0.0.1" in body["store_error"]["detail"]


async def test_error_reply_degrades_as_store_error(
    serving: Serving, redis_url: str, bundle: LoadedBundle, users: DemoUsers
) -> None:
    write_redis(redis_url, bundle, users)
    async with serving(store="redis", redis_url=redis_url) as client:
        redis.Redis.from_url(redis_url).set(keys.user_sequence_key("u1"), b"not a hash")
        response = await _rank(client)
        ready = await client.get("/readyz")
        results = await _results(client)
    assert response.json()["degraded"] == ["store_error"]
    assert results == {"hit": 0, "miss": 0, "timeout": 0, "unavailable": 0, "error": 1}
    assert ready.json()["store_reachable"] is True and "store_error" not in ready.json()


async def test_slow_store_degrades_as_timeout(
    serving: Serving, redis_url: str, bundle: LoadedBundle, users: DemoUsers
) -> None:
    write_redis(redis_url, bundle, users)
    admin = redis.Redis.from_url(redis_url)
    async with serving(store="redis", redis_url=redis_url, redis_timeout_ms=50) as client:
        await _rank(client)
        admin.execute_command("CLIENT", "PAUSE", "300", "ALL")
        paused = await _rank(client)
        await asyncio.sleep(0.3)
        results = await _results(client)
    admin.close()
    assert paused.json()["degraded"] == ["store_timeout"]
    assert results == {"hit": 1, "miss": 0, "timeout": 1, "unavailable": 0, "error": 0}
