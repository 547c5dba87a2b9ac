"""The Redis store (single node or Redis Cluster): a request's keys in one pipelined round trip.

A fetch sends, in one pipeline (no MULTI): HMGET of the user's sequence, GET of its denormalised
sequence vectors under the served bundle version, HMGET of the generated block, and the MGET of
every candidate and recent-event item vector. On a cluster the user's keys share a slot (hash
tag) and the item keys are grouped into one MGET per slot; the pipeline sends each node its
commands at once, the nodes in parallel. Fallback: when the sequence-vector copy is missing or
does not match the sequence (the user's sequence changed after the copy was written), a second
MGET reads the sequence items' vectors one by one; that request pays two round trips.

Every call goes through a :class:`~service.stores.breaker.CircuitBreaker`, so a store that is
down costs a request nothing once the breaker has opened. Appends are idempotent by event ID:
see :mod:`service.stores.redis_append`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from service.bundles.loaded import LoadedBundle
from service.contracts import keys
from service.errors import StoreError, StoreTimeout, StoreUnavailable
from service.stores.base import (
    BoolArray,
    FetchQuery,
    FetchResult,
    FloatArray,
    GeneratedBehaviours,
    RankingStore,
    UserSequence,
)
from service.stores.breaker import BreakerPolicy, CircuitBreaker
from service.stores.config import RedisStoreConfig
from service.stores.event_log import AppendResult, NewEvents
from service.stores.redis_append import SequenceAppender
from service.stores.redis_writer import decode_sequence

log = logging.getLogger(__name__)

RedisClient = aioredis.Redis | AsyncRedisCluster
#: What a Redis call raises when the server is slow, gone, or refuses (cluster topology
#: errors are not RedisErrors).
REDIS_ERRORS = (RedisError, RedisClusterException, OSError)
#: Of those, the ones that say the server was not reached: a refused or reset connection, an
#: unknown host, a cluster without a reachable node.
UNREACHABLE_ERRORS = (RedisConnectionError, RedisClusterException, OSError)

_SEQ_FIELDS = [keys.SEQ_ITEMS, keys.SEQ_EVENTS, keys.SEQ_TIMESTAMPS]
_GEN_FIELDS = [keys.GEN_VECTORS, keys.GEN_ITEMS, keys.GEN_VERSION]
_ADMIN_TIMEOUT_S = 5.0


def connect(config: RedisStoreConfig) -> RedisClient:
    """A client for the server or cluster ``config`` names (connections open lazily)."""
    backstop_s = max(config.timeout_ms / 1000.0, 1.0)
    options: dict[str, Any] = {
        "socket_timeout": backstop_s,
        "socket_connect_timeout": backstop_s,
        "max_connections": config.max_connections,
        # One immediate retry replaces a pooled connection that a restart or a failover broke;
        # backing off is pointless within a budget of milliseconds.
        "retry": Retry(NoBackoff(), 1),
    }
    if config.cluster:
        # Start and keep serving while a failover leaves some slots without a master.
        return AsyncRedisCluster.from_url(config.url, require_full_coverage=False, **options)
    return aioredis.Redis.from_url(config.url, **options)


class RedisStore(RankingStore):
    """Backend over a Redis server or Cluster, one round trip per request."""

    def __init__(
        self,
        client: RedisClient,
        bundle: LoadedBundle,
        timeout_ms: int,
        breaker: CircuitBreaker | None = None,
        event_id_window: int = 1024,
    ) -> None:
        self._client = client
        self._cluster = isinstance(client, AsyncRedisCluster)
        self._version = bundle.version
        self._dim = bundle.items.dim
        self._default = bundle.items.default_vector
        self._timeout_s = timeout_ms / 1000.0
        self._breaker = breaker or CircuitBreaker("redis", BreakerPolicy(failure_threshold=0))
        self._appender = SequenceAppender(
            client,
            bundle.version,
            self._dim,
            bundle.manifest.max_lengths.sequence,
            event_id_window,
            self._item_vectors,
        )

    @classmethod
    def open(cls, config: RedisStoreConfig, bundle: LoadedBundle) -> RedisStore:
        policy = BreakerPolicy(config.breaker_failures, config.breaker_cool_down_ms / 1000.0)
        name = "redis cluster" if config.cluster else "redis"
        return cls(
            connect(config),
            bundle,
            config.timeout_ms,
            breaker=CircuitBreaker(name, policy),
            event_id_window=config.event_id_window,
        )

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    async def fetch(self, query: FetchQuery) -> FetchResult:
        return await self._breaker.call(lambda: self._fetch(query))

    async def _fetch(self, query: FetchQuery) -> FetchResult:
        item_ids = [*query.candidate_ids, *query.event_item_ids]
        pipe = self._client.pipeline(transaction=False)
        pipe.hmget(keys.user_sequence_key(query.user_id), _SEQ_FIELDS)
        pipe.get(keys.user_sequence_vectors_key(query.user_id, self._version))
        pipe.hmget(keys.generated_behaviours_key(query.user_id), _GEN_FIELDS)
        item_replies = self._queue_mget(
            pipe, [keys.item_vector_key(self._version, i) for i in item_ids]
        )
        async with self._deadline(self._timeout_s, "reading"):
            replies = await pipe.execute()
        sequence = decode_sequence(replies[0])
        vectors, known = self._decode_items(item_replies(replies[3:]))
        split = len(query.candidate_ids)
        return FetchResult(
            sequence=sequence,
            sequence_vectors=await self._sequence_vectors(sequence, replies[1]),
            generated=self._decode_generated(replies[2]),
            candidate_vectors=vectors[:split],
            candidate_known=known[:split],
            event_item_vectors=vectors[split:],
            event_item_known=known[split:],
        )

    def _queue_mget(
        self, pipe: Any, item_keys: list[str]
    ) -> Callable[[list[Any]], list[bytes | None]]:
        """Queue the MGETs of ``item_keys`` (one per slot on a cluster); the returned function
        puts their replies back in the order of ``item_keys``."""
        if not item_keys:
            return lambda _: []
        if not self._cluster:
            pipe.mget(item_keys)
            return lambda replies: list(replies[0])
        by_slot: dict[int, list[int]] = {}
        for position, key in enumerate(item_keys):
            by_slot.setdefault(key_slot(key.encode()), []).append(position)
        groups = list(by_slot.values())
        for positions in groups:
            # Keys of one slot: a cluster pipeline refuses ``mget()``, not the command itself.
            pipe.execute_command("MGET", *(item_keys[p] for p in positions))

        def in_order(replies: list[Any]) -> list[bytes | None]:
            values: list[bytes | None] = [None] * len(item_keys)
            for positions, reply in zip(groups, replies, strict=True):
                for position, value in zip(positions, reply, strict=True):
                    values[position] = value
            return values

        return in_order

    async def _item_vectors(self, item_ids: Sequence[str]) -> FloatArray:
        """Vectors of ``item_ids`` under the served version (the default for unknown ones)."""
        if not item_ids:
            return np.zeros((0, self._dim), np.float32)
        pipe = self._client.pipeline(transaction=False)
        replies = self._queue_mget(pipe, [keys.item_vector_key(self._version, i) for i in item_ids])
        vectors, _ = self._decode_items(replies(await pipe.execute()))
        return vectors

    @asynccontextmanager
    async def _deadline(self, timeout_s: float, doing: str) -> AsyncIterator[None]:
        """Bound the block by ``timeout_s``; Redis failures become the store's domain errors, by
        cause: slow (``StoreTimeout``), not reached (``StoreUnavailable``), or other
        (``StoreError``: an error reply)."""
        try:
            async with asyncio.timeout(timeout_s):
                yield
        except (TimeoutError, RedisTimeoutError) as error:
            raise StoreTimeout(
                f"redis did not answer within {timeout_s * 1000:.0f} ms while {doing}"
            ) from error
        except UNREACHABLE_ERRORS as error:
            raise StoreUnavailable(f"redis is unreachable while {doing}: {error}") from error
        except REDIS_ERRORS as error:
            raise StoreError(f"redis answered an error while {doing}: {error}") from error

    async def _sequence_vectors(
        self, sequence: UserSequence | None, raw: bytes | None
    ) -> FloatArray:
        if sequence is None:
            return np.zeros((0, self._dim), np.float32)
        if raw is not None:
            vectors = keys.decode_sequence_vectors(raw, sequence.item_ids, self._dim)
            if vectors is not None:
                return vectors
        async with self._deadline(self._timeout_s, "reading sequence item vectors"):
            return await self._item_vectors(sequence.item_ids)

    def _decode_items(self, raw: Sequence[bytes | None]) -> tuple[FloatArray, BoolArray]:
        """Item vectors in bulk; a missing (or malformed) one is unknown, with the default."""
        size = self._dim * keys.VECTOR_DTYPE.itemsize
        known = np.fromiter((r is not None and len(r) == size for r in raw), np.bool_, len(raw))
        vectors = np.empty((len(raw), self._dim), np.float32)
        vectors[:] = self._default
        if known.any():
            block = b"".join(r for r, k in zip(raw, known, strict=True) if k and r is not None)
            vectors[known] = np.frombuffer(block, keys.VECTOR_DTYPE).reshape(-1, self._dim)
        return vectors, known

    def _decode_generated(self, fields: Sequence[bytes | None]) -> GeneratedBehaviours | None:
        raw_vectors, raw_items, raw_version = fields
        if raw_vectors is None:
            return None
        try:
            vectors = keys.decode_vectors(raw_vectors, self._dim)
        except ValueError as error:
            log.warning("ignoring a corrupt generated block: %s", error)
            return None
        item_ids = keys.decode_item_ids(raw_items or b"")
        if len(vectors) == 0:
            return None
        if len(item_ids) != len(vectors):
            item_ids = [f"generated:{k}" for k in range(len(vectors))]
        version = (raw_version or b"").decode()
        return GeneratedBehaviours(item_ids, vectors, version)

    async def ping(self) -> bool:
        """Whether the store answers; an open breaker answers False without asking it."""
        return await self.check() is None

    async def check(self) -> StoreError | None:
        try:
            await self._breaker.call(self._ping)
        except StoreError as error:
            return error
        return None

    async def _ping(self) -> bool:
        async with self._deadline(max(self._timeout_s, 1.0), "answering a ping"):
            return bool(await self._client.ping())

    async def append_events(self, user_id: str, events: NewEvents) -> AppendResult:
        return await self._breaker.call(lambda: self._append(user_id, events))

    async def _append(self, user_id: str, events: NewEvents) -> AppendResult:
        async with self._deadline(_ADMIN_TIMEOUT_S, "appending events"):
            return await self._appender.append(user_id, events)

    async def close(self) -> None:
        await self._client.aclose()
