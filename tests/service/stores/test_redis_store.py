"""Redis-only behaviour: one round trip, the sequence-vector fallback, timeouts, the circuit
breaker, rejected writes, TTLs."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import numpy as np
import pytest
import redis
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection

from service.bundles.loaded import LoadedBundle
from service.contracts import keys
from service.errors import StoreCircuitOpen, StoreError, StoreTimeout, StoreUnavailable
from service.stores.base import FetchQuery, UserSequence
from service.stores.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from service.stores.config import RedisStoreConfig
from service.stores.event_log import NewEvents
from service.stores.redis import RedisStore
from service.stores.redis_writer import RedisWriter
from tests.support.ports import free_port
from tests.support.users import DemoUsers, write_redis

pytestmark = pytest.mark.anyio


class CountingConnection(Connection):
    """Counts writes to the socket: one per round trip (a pipeline packs all its commands)."""

    sends: ClassVar[int] = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sends += 1
        await super().send_packed_command(command, check_health)


def _command_calls(client: redis.Redis, *names: str) -> dict[str, int]:
    stats: dict[str, Any] = client.info("commandstats")  # type: ignore[assignment]
    return {name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in names}


@pytest.fixture
def seeded(redis_url: str, bundle: LoadedBundle, users: DemoUsers) -> redis.Redis:
    write_redis(redis_url, bundle, users)
    return redis.Redis.from_url(redis_url)


@pytest.fixture
async def counted_store(redis_url: str, bundle: LoadedBundle, seeded: redis.Redis) -> Any:
    pool = aioredis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    store = RedisStore(aioredis.Redis(connection_pool=pool), bundle, timeout_ms=1000)
    assert await store.ping()  # connect first: the handshake is not the request's round trip
    yield store
    await store.close()


async def test_fetch_is_one_round_trip(counted_store: RedisStore, seeded: redis.Redis) -> None:
    seeded.config_resetstat()
    CountingConnection.sends = 0
    result = await counted_store.fetch(FetchQuery("u1", ["i1", "i2", "nope"], ["i9"]))
    assert CountingConnection.sends == 1
    assert result.sequence is not None and result.generated is not None
    calls = _command_calls(seeded, "hmget", "get", "mget", "exec", "multi")
    assert calls == {"hmget": 2, "get": 1, "mget": 1, "exec": 0, "multi": 0}


async def test_missing_sequence_vectors_fall_back_to_a_second_mget(
    counted_store: RedisStore, seeded: redis.Redis, bundle: LoadedBundle, users: DemoUsers
) -> None:
    seeded.delete(keys.user_sequence_vectors_key("u1", bundle.version))
    CountingConnection.sends = 0
    result = await counted_store.fetch(FetchQuery("u1", ["i1"]))
    assert CountingConnection.sends == 2
    expected, _ = bundle.items.lookup(users.sequences["u1"].item_ids)
    np.testing.assert_array_equal(result.sequence_vectors, expected)


async def test_a_copy_written_for_another_sequence_of_the_same_length_is_not_used(
    counted_store: RedisStore, seeded: redis.Redis, bundle: LoadedBundle, users: DemoUsers
) -> None:
    """A capped sequence keeps its length as events push old ones out, so a copy of the vectors
    written before (e.g. under a version not served while events were appended) has the right
    length and the wrong items: its digest tells, and the vectors are read from the items."""
    sequence = users.sequences["u1"]
    shifted = [*sequence.item_ids[1:], "i7"]  # one event in, the oldest out: same length
    stale, _ = bundle.items.lookup(shifted)
    key = keys.user_sequence_vectors_key("u1", bundle.version)
    seeded.set(key, keys.encode_sequence_vectors(shifted, stale))
    CountingConnection.sends = 0
    result = await counted_store.fetch(FetchQuery("u1", ["i1"]))
    assert CountingConnection.sends == 2  # the copy was refused: the items' vectors were read
    expected, _ = bundle.items.lookup(sequence.item_ids)
    np.testing.assert_array_equal(result.sequence_vectors, expected)
    # An untagged copy (the layout before the digest) is refused the same way.
    seeded.set(key, keys.encode_vectors(expected))
    CountingConnection.sends = 0
    result = await counted_store.fetch(FetchQuery("u1", ["i1"]))
    assert CountingConnection.sends == 2
    np.testing.assert_array_equal(result.sequence_vectors, expected)


async def test_float16_round_trip(redis_url: str, bundle: LoadedBundle) -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(3, bundle.items.dim)).astype(np.float32)
    writer = RedisWriter.from_url(redis_url)
    writer.write_item_vectors(bundle.version, ["r0", "r1", "r2"], vectors)
    store = RedisStore.open(RedisStoreConfig(url=redis_url, timeout_ms=1000), bundle)
    result = await store.fetch(FetchQuery("u", ["r0", "r1", "r2"]))
    await store.close()
    np.testing.assert_array_equal(result.candidate_vectors, vectors.astype(np.float16))
    assert result.candidate_known.all()


async def test_malformed_item_vector_is_unknown(
    seeded: redis.Redis, redis_url: str, bundle: LoadedBundle
) -> None:
    seeded.set(keys.item_vector_key(bundle.version, "i1"), b"\x00\x01\x02")
    store = RedisStore.open(RedisStoreConfig(url=redis_url), bundle)
    result = await store.fetch(FetchQuery("u1", ["i1", "i2"]))
    await store.close()
    np.testing.assert_array_equal(result.candidate_known, [False, True])


async def test_generated_blocks_expire(seeded: redis.Redis) -> None:
    ttl = seeded.ttl(keys.generated_behaviours_key("u1"))
    assert 0 < int(ttl) <= 3600  # type: ignore[arg-type]


async def test_active_bundle_is_recorded(redis_url: str, seeded: redis.Redis) -> None:
    assert RedisWriter.from_url(redis_url).active_bundle() == "test-1"


async def test_paused_server_raises_store_timeout(
    seeded: redis.Redis, redis_url: str, bundle: LoadedBundle
) -> None:
    store = RedisStore.open(RedisStoreConfig(url=redis_url, timeout_ms=50), bundle)
    assert await store.ping()
    seeded.execute_command("CLIENT", "PAUSE", "300", "ALL")
    with pytest.raises(StoreTimeout):
        await store.fetch(FetchQuery("u1", ["i1"]))
    await asyncio.sleep(0.3)
    await store.close()


async def test_unreachable_server(bundle: LoadedBundle) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    store = RedisStore.open(RedisStoreConfig(url=url, timeout_ms=200), bundle)
    assert not await store.ping()
    # Not a late read: the caller serves it degraded under its own cause.
    with pytest.raises(StoreUnavailable, match="unreachable while reading"):
        await store.fetch(FetchQuery("u1", ["i1"]))
    with pytest.raises(StoreUnavailable, match="appending events"):
        await store.append_events("u1", NewEvents.of(UserSequence.of(["i1"], [1], [1])))
    await store.close()


async def test_open_breaker_spares_the_network(
    redis_url: str, bundle: LoadedBundle, seeded: redis.Redis
) -> None:
    pool = aioredis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    breaker = CircuitBreaker("redis", BreakerPolicy(failure_threshold=2, cool_down_s=0.2))
    store = RedisStore(aioredis.Redis(connection_pool=pool), bundle, 50, breaker=breaker)
    assert await store.ping()
    seeded.execute_command("CLIENT", "PAUSE", "400", "ALL")
    for _ in range(2):
        with pytest.raises(StoreTimeout):
            await store.fetch(FetchQuery("u1", ["i1"]))
    assert breaker.state is BreakerState.OPEN
    CountingConnection.sends = 0
    with pytest.raises(StoreCircuitOpen, match="circuit opened after 2 failures") as open_:
        await store.fetch(FetchQuery("u1", ["i1"]))
    assert isinstance(open_.value.opened_by, StoreTimeout)
    assert not await store.ping()
    with pytest.raises(StoreCircuitOpen):
        await store.append_events("u1", NewEvents.of(UserSequence.of(["i1"], [1], [1])))
    assert CountingConnection.sends == 0
    await asyncio.sleep(0.5)  # the pause is over and so is the cool-down
    assert breaker.state is BreakerState.HALF_OPEN
    result = await store.fetch(FetchQuery("u1", ["i1"]))
    assert result.sequence is not None
    assert breaker.state is BreakerState.CLOSED
    await store.close()


async def test_a_rejected_write_is_an_error_not_a_drop(
    redis_url: str, bundle: LoadedBundle, seeded: redis.Redis
) -> None:
    store = RedisStore.open(RedisStoreConfig(url=redis_url), bundle)
    events = NewEvents.of(UserSequence.of(["i1"], [1], [1_764_000_500]), ["evt-1"])
    seeded.config_set("maxmemory-policy", "noeviction")
    seeded.config_set("maxmemory", "1")
    try:
        # An error reply, not an unreachable store.
        with pytest.raises(StoreError, match=r"answered an error.*OOM") as raised:
            await store.append_events("u1", events)
        assert not isinstance(raised.value, StoreUnavailable | StoreTimeout)
    finally:
        seeded.config_set("maxmemory", "0")
    assert (await store.append_events("u1", events)).appended == 1  # the retry lands once
    assert (await store.append_events("u1", events)).duplicates == 1
    await store.close()
