"""The Redis store: a request's keys in one pipelined round trip, layout per contracts.keys.

A fetch sends, in one pipeline (no MULTI): HMGET of the user's sequence, GET of its denormalised
sequence vectors under the served bundle version, HMGET of the generated block, and one MGET of
every candidate and recent-event item vector. Fallback: when the sequence-vector copy is missing
or does not match the sequence (the user's sequence changed after the copy was written), a second
MGET reads the sequence items' vectors one by one; that request pays two round trips.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, ClassVar, cast

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import RedisError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.bundle import LoadedBundle
from service.contracts import keys
from service.errors import StoreTimeout, StoreUnavailable
from service.stores.base import (
    BoolArray,
    FetchQuery,
    FetchResult,
    FloatArray,
    GeneratedBehaviours,
    RankingStore,
    StoreCapabilities,
    UserSequence,
)
from service.stores.config import RedisStoreConfig
from service.stores.redis_writer import sequence_fields

log = logging.getLogger(__name__)

_SEQ_FIELDS = [keys.SEQ_ITEMS, keys.SEQ_EVENTS, keys.SEQ_TIMESTAMPS]
_GEN_FIELDS = [keys.GEN_VECTORS, keys.GEN_ITEMS, keys.GEN_VERSION]
_ADMIN_TIMEOUT_S = 5.0


def decode_sequence(fields: Sequence[bytes | None]) -> UserSequence | None:
    """A sequence hash's ``items, events, ts`` fields; None when absent or corrupt."""
    raw_items, raw_events, raw_ts = fields
    if raw_items is None or raw_events is None or raw_ts is None:
        return None
    try:
        return UserSequence(
            keys.decode_item_ids(raw_items),
            np.frombuffer(raw_events, keys.EVENT_DTYPE).copy(),
            np.frombuffer(raw_ts, keys.TIMESTAMP_DTYPE).astype(np.int64),
        )
    except ValueError as error:
        log.warning("ignoring a corrupt user sequence: %s", error)
        return None


class RedisStore(RankingStore):
    """Backend over a Redis server or Cluster, one round trip per request."""

    capabilities: ClassVar[StoreCapabilities] = StoreCapabilities(
        persistent=True, shared_across_replicas=True, expiring_generated=True
    )

    def __init__(self, client: aioredis.Redis, bundle: LoadedBundle, timeout_ms: int) -> None:
        self._client = client
        self._version = bundle.version
        self._dim = bundle.items.dim
        self._default = bundle.items.default_vector
        self._max_length = bundle.manifest.max_lengths.sequence
        self._timeout_s = timeout_ms / 1000.0

    @classmethod
    def open(cls, config: RedisStoreConfig, bundle: LoadedBundle) -> RedisStore:
        backstop_s = max(config.timeout_ms / 1000.0, 1.0)
        client = aioredis.Redis.from_url(
            config.url,
            socket_timeout=backstop_s,
            socket_connect_timeout=backstop_s,
            max_connections=config.max_connections,
        )
        return cls(client, bundle, config.timeout_ms)

    async def fetch(self, query: FetchQuery) -> FetchResult:
        item_ids = [*query.candidate_ids, *query.event_item_ids]
        pipe = self._client.pipeline(transaction=False)
        pipe.hmget(keys.user_sequence_key(query.user_id), _SEQ_FIELDS)
        pipe.get(keys.user_sequence_vectors_key(query.user_id, self._version))
        pipe.hmget(keys.generated_behaviours_key(query.user_id), _GEN_FIELDS)
        if item_ids:
            pipe.mget([keys.item_vector_key(self._version, i) for i in item_ids])
        replies = await self._execute(pipe.execute())
        sequence = decode_sequence(replies[0])
        vectors, known = self._decode_items(replies[3] if item_ids else [])
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

    async def _execute(self, call: Any) -> Any:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await call
        except (TimeoutError, RedisTimeoutError) as error:
            budget_ms = self._timeout_s * 1000
            raise StoreTimeout(f"redis did not answer within {budget_ms:.0f} ms") from error
        except (RedisError, OSError) as error:
            raise StoreUnavailable(f"redis is unavailable: {error}") from error

    async def _sequence_vectors(
        self, sequence: UserSequence | None, raw: bytes | None
    ) -> FloatArray:
        if sequence is None:
            return np.zeros((0, self._dim), np.float32)
        if raw is not None:
            try:
                vectors = keys.decode_vectors(raw, self._dim)
            except ValueError:
                vectors = None
            if vectors is not None and len(vectors) == len(sequence):
                return vectors
        if not sequence.item_ids:
            return np.zeros((0, self._dim), np.float32)
        item_keys = [keys.item_vector_key(self._version, i) for i in sequence.item_ids]
        vectors, _ = self._decode_items(await self._execute(self._client.mget(item_keys)))
        return vectors

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
        try:
            async with asyncio.timeout(max(self._timeout_s, 1.0)):
                return bool(await self._client.ping())
        except (TimeoutError, RedisError, OSError):
            return False

    async def append_events(self, user_id: str, events: UserSequence) -> int:
        try:
            async with asyncio.timeout(_ADMIN_TIMEOUT_S):
                return await self._append(user_id, events)
        except (TimeoutError, RedisTimeoutError) as error:
            raise StoreTimeout("redis did not answer while appending events") from error
        except (RedisError, OSError) as error:
            raise StoreUnavailable(f"redis is unavailable: {error}") from error

    async def _append(self, user_id: str, events: UserSequence) -> int:
        """Read-modify-write under WATCH, retried when another writer got there first."""
        seq_key = keys.user_sequence_key(user_id)
        async with self._client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(seq_key)
                    raw_sequence = cast(list[bytes | None], await pipe.hmget(seq_key, _SEQ_FIELDS))
                    current = decode_sequence(raw_sequence)
                    updated = (current or UserSequence.empty()).extended(events, self._max_length)
                    item_keys = [keys.item_vector_key(self._version, i) for i in updated.item_ids]
                    raw = cast(list[bytes | None], await pipe.mget(item_keys)) if item_keys else []
                    vectors, _ = self._decode_items(raw)
                    pipe.multi()
                    pipe.hset(seq_key, mapping=sequence_fields(updated))  # type: ignore[arg-type]
                    pipe.set(
                        keys.user_sequence_vectors_key(user_id, self._version),
                        keys.encode_vectors(vectors),
                    )
                    await pipe.execute()
                    return len(updated)
                except WatchError:
                    continue

    async def close(self) -> None:
        await self._client.aclose()
