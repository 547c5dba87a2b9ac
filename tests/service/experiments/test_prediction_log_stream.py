"""The prediction log's Redis stream, on real redis-server processes: records land as JSON in
order, a Redis that is down costs dropped (and counted) records but never a blocked or failed
caller, and records flow again once it is back; a Redis Cluster takes them too."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from prometheus_client import CollectorRegistry
from redis.cluster import RedisCluster

from service.experiments.prediction_log import open_prediction_log
from service.experiments.prediction_log.stream import StreamLog
from service.experiments.records import PREDICTION_STREAM, STREAM_FIELD
from service.observability.prediction_log_metrics import PredictionLogMetrics
from service.settings import Settings
from service.stores.config import RedisStoreConfig
from service.stores.redis import connect
from tests.support.log_records import prediction
from tests.support.ports import free_port
from tests.support.redis_nodes import RedisProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.anyio


def streamed(client: redis.Redis | RedisCluster) -> list[dict[str, Any]]:
    entries: Any = client.xrange(PREDICTION_STREAM)
    return [orjson.loads(fields[STREAM_FIELD.encode()]) for _, fields in entries]


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of this test alone, which it may stop and start again."""
    server = RedisProcess(tmp_path / "redis", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


async def test_records_land_in_the_stream_as_json_in_order(
    redis_url: str, registry: CollectorRegistry
) -> None:
    settings = Settings.model_validate({"store": "redis", "redis_url": redis_url})
    log = open_prediction_log(settings, settings.store_config(), PredictionLogMetrics(registry))
    assert isinstance(log, StreamLog)
    records = [prediction(n) for n in range(600)]
    assert all(log.record(record) for record in records)
    await log.close()
    with redis.Redis.from_url(redis_url) as client:
        assert streamed(client) == records
    assert sample(registry, "reaseq_prediction_log_records_total", kind="prediction") == 600


async def test_the_stream_is_capped_near_its_maxlen(redis_url: str) -> None:
    config = RedisStoreConfig(url=redis_url)
    log = StreamLog(connect(config), maxlen=10, queue_size=5000, metrics=PredictionLogMetrics())
    for n in range(2000):
        log.record(prediction(n))
    await log.close()
    with redis.Redis.from_url(redis_url) as client:
        kept = streamed(client)
    # Approximate trimming removes whole stream nodes only: more than 10 stay, never all.
    assert 10 <= len(kept) < 2000
    assert kept[-1]["request_id"] == "r1999"


async def test_a_redis_that_is_down_drops_and_counts_then_records_flow_again(
    own_redis: RedisProcess, registry: CollectorRegistry
) -> None:
    metrics = PredictionLogMetrics(registry)
    config = RedisStoreConfig(url=own_redis.url, timeout_ms=200)
    log = StreamLog(connect(config), 1000, queue_size=100, metrics=metrics, retry_delay_s=0.05)
    log.record(prediction(0))
    written = "reaseq_prediction_log_records_total"
    await wait_for(lambda: sample(registry, written, kind="prediction") == 1, "first record")

    own_redis.stop(kill=True)
    for n in range(1, 301):  # more than the queue holds: the rest is dropped at once
        log.record(prediction(n))  # never raises, never waits for Redis
    await wait_for(
        lambda: sample(registry, "reaseq_prediction_log_write_errors_total") > 0,
        "a failed write counted",
    )
    assert sample(registry, "reaseq_prediction_log_dropped_total") >= 200
    assert sample(registry, written, kind="prediction") == 1

    own_redis.start()
    n = 1000

    def landed() -> bool:
        with own_redis.client() as client:
            return any(r["request_id"].startswith("back") for r in streamed(client))

    while not landed():
        log.record(dict(prediction(n), request_id=f"back{n}"))  # type: ignore[arg-type]
        n += 1
        await asyncio.sleep(0.02)
        assert n < 5000, "records never flowed again after Redis came back"
    await log.close()
    with own_redis.client() as client:
        assert [r["request_id"] for r in streamed(client)][-1] == f"back{n - 1}"
    # Every record is written or dropped, none twice, none lost without a count.
    total = sum(sample(registry, written, kind=k) for k in ("prediction", "outcome"))
    assert total + sample(registry, "reaseq_prediction_log_dropped_total") == n - 1000 + 301


async def test_a_redis_cluster_takes_the_stream(redis_cluster_url: str) -> None:
    settings = Settings.model_validate(
        {"store": "redis", "redis_url": redis_cluster_url, "redis_cluster": True}
    )
    log = open_prediction_log(settings, settings.store_config())
    assert log is not None
    records = [prediction(n) for n in range(50)]
    for record in records:
        log.record(record)
    await log.close()
    with RedisCluster.from_url(redis_cluster_url) as client:
        assert streamed(client) == records


async def test_records_from_other_threads_reach_the_stream(redis_url: str) -> None:
    log = StreamLog(connect(RedisStoreConfig(url=redis_url)), 1000, 100, PredictionLogMetrics())
    records = [prediction(n) for n in range(20)]
    for record in records:
        assert await asyncio.to_thread(log.record, record)
    await log.close()
    with redis.Redis.from_url(redis_url) as client:
        assert streamed(client) == records
