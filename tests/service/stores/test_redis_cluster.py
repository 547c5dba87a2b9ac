"""The service over a real Redis Cluster: normal answers, and answers through master failovers.

The store contract suite also runs against the cluster (test_store_contract.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from service.bundles.loaded import LoadedBundle
from service.contracts import keys
from tests.support.redis_nodes import LocalCluster, RedisProcess, wait_until
from tests.support.serving import ADMIN_KEY, Serving
from tests.support.users import NOW, DemoUsers, write_redis

pytestmark = pytest.mark.anyio

RANK = {"user_id": "u1", "candidates": ["i1", "i3"]}
USER_KEY = keys.user_sequence_key("u1")
#: The reasons of an answer the store could not help with (slow, unreachable, an error reply).
STORE_DEGRADED = {"store_timeout", "store_unavailable", "store_error"}
CLUSTER = {
    "store": "redis",
    "redis_cluster": True,
    "redis_timeout_ms": 200,
    "store_breaker_cool_down_ms": 200,
}


async def _append(client: httpx.AsyncClient, event_id: str) -> dict[str, Any]:
    event = {"item_id": "i9", "event": "cart", "ts": NOW, "event_id": event_id}
    response = await client.post(
        "/v1/admin/users/u1/events", json={"events": [event]}, headers={"X-API-Key": ADMIN_KEY}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _keep_ranking(client: httpx.AsyncClient, stop: asyncio.Event) -> list[tuple[int, bool]]:
    """``(status, degraded by the store)`` of each answer until ``stop``."""
    answers = []
    while not stop.is_set():
        response = await client.post("/v1/rank", json=RANK)
        degraded = STORE_DEGRADED & set(response.json()["degraded"])
        answers.append((response.status_code, bool(degraded)))
        await asyncio.sleep(0.01)
    return answers


async def _until_normal(client: httpx.AsyncClient, deadline_s: float = 10.0) -> dict[str, Any]:
    """The first answer without a store degradation (the breaker may still be cooling down)."""
    stop = time.monotonic() + deadline_s
    while True:
        body: dict[str, Any] = (await client.post("/v1/rank", json=RANK)).json()
        if not STORE_DEGRADED & set(body["degraded"]) or time.monotonic() > stop:
            return body
        await asyncio.sleep(0.05)


@pytest.fixture
def cluster_url(redis_cluster_url: str, bundle: LoadedBundle, users: DemoUsers) -> str:
    """The flushed cluster, holding the demo users."""
    write_redis(redis_cluster_url, bundle, users, cluster=True)
    return redis_cluster_url


async def test_ranks_and_appends_over_a_cluster(serving: Serving, cluster_url: str) -> None:
    async with serving(redis_url=cluster_url, **CLUSTER) as client:
        assert (await client.get("/readyz")).status_code == 200
        body = (await client.post("/v1/rank", json=RANK)).json()
        assert body["degraded"] == []
        assert (await _append(client, "c1"))["appended"] == 1
        assert (await _append(client, "c1"))["duplicates"] == 1


def _manual_failover(cluster: LocalCluster, replica: RedisProcess) -> None:
    with replica.client() as client:
        client.execute_command("CLUSTER", "FAILOVER")
    wait_until(lambda: cluster.node_of(USER_KEY) is replica, 10, "the replica was not promoted")
    cluster.wait_healthy()


async def test_manual_failover_keeps_answering(
    serving: Serving, redis_cluster: LocalCluster, cluster_url: str
) -> None:
    async with serving(redis_url=cluster_url, **CLUSTER) as client:
        assert (await client.post("/v1/rank", json=RANK)).json()["degraded"] == []
        stop = asyncio.Event()
        ranking = asyncio.create_task(_keep_ranking(client, stop))
        replica = redis_cluster.node_of(USER_KEY, replica=True)
        await asyncio.to_thread(_manual_failover, redis_cluster, replica)
        await asyncio.sleep(0.2)
        stop.set()
        answers = await ranking
        assert answers and {status for status, _ in answers} == {200}
        assert (await _until_normal(client))["degraded"] == []
        assert (await _append(client, "after-failover"))["appended"] == 1


async def test_killed_master_is_replaced_while_answering(
    serving: Serving, redis_cluster: LocalCluster, cluster_url: str
) -> None:
    master = redis_cluster.node_of(USER_KEY)
    replica = redis_cluster.node_of(USER_KEY, replica=True)
    async with serving(redis_url=cluster_url, **CLUSTER) as client:
        assert (await client.post("/v1/rank", json=RANK)).json()["degraded"] == []
        stop = asyncio.Event()
        ranking = asyncio.create_task(_keep_ranking(client, stop))
        try:
            master.stop(kill=True)
            # The replica takes over after the node timeout and an election (a few seconds).
            await asyncio.to_thread(redis_cluster.wait_healthy)
            assert redis_cluster.node_of(USER_KEY) is replica
        finally:
            stop.set()
            answers = await ranking
        # Degraded while the slot had no master, never an error.
        assert {status for status, _ in answers} == {200}
        assert any(degraded for _, degraded in answers)
        assert (await _until_normal(client))["degraded"] == []
        assert (await _append(client, "after-kill"))["appended"] == 1
    # Back as a replica of the new master: the cluster has three masters with a replica again.
    master.start()
    redis_cluster.wait_healthy()
