"""Shared fixtures: real redis-server processes on free loopback ports (a server, a cluster)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from loadtest.service_process import free_port
from tests.redis_nodes import LocalCluster, RedisProcess


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a fresh redis-server process, stopped after the last test."""
    server = RedisProcess(tmp_path_factory.mktemp("redis"), free_port())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """The shared Redis server, flushed before each test."""
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    yield redis_server


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A Redis Cluster of three masters with a replica each, stopped after the last test.

    Tests may fail over or restart nodes, but must leave three masters with a replica each."""
    cluster = LocalCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_cluster_url(redis_cluster: LocalCluster) -> str:
    """The shared cluster, healthy and flushed before each test."""
    redis_cluster.wait_healthy()
    redis_cluster.flush()
    return redis_cluster.url


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
