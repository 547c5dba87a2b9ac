"""Fixtures every test package may use: real redis-server processes on free loopback ports (a
server, a cluster), and ``reaseq serve`` as a real process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis

from loadtest.service_process import ServiceDidNotStart, serving_process
from tests.support.ports import free_port
from tests.support.reaseq import REASEQ, RunningService
from tests.support.redis_nodes import LocalCluster, RedisProcess


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
def start_service(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], RunningService]]:
    """Start ``reaseq serve`` as a process with the given REASEQ_* environment; stop it after."""
    with ExitStack() as running:

        def start(env: dict[str, str]) -> RunningService:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            log = tmp_path / f"service-{port}.log"
            command = [*REASEQ, "serve", "--host", "127.0.0.1", "--port", str(port)]
            try:
                process = running.enter_context(serving_process(command, env, log, url, 60, 10))
            except ServiceDidNotStart as error:
                pytest.fail(f"{error}:\n{log.read_text()[-4000:]}")
            return RunningService(url=url, process=process, log=log)

        yield start


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
