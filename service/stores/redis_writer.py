"""Write side of the Redis layout in :mod:`service.contracts.keys`: the publisher and tests use it.

Synchronous (redis-py) because its callers are batch jobs; writes are pipelined in batches. On a
Redis Cluster the same layout is written: item vectors with one MSET per slot, each user's keys
(one slot, by their hash tag) in a pipeline that sends every node its share.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
import redis
from redis.cluster import RedisCluster

from service.contracts import keys
from service.stores.base import GeneratedBehaviours, UserSequence

log = logging.getLogger(__name__)

_SEQUENCE_FIELDS = [keys.SEQ_ITEMS, keys.SEQ_EVENTS, keys.SEQ_TIMESTAMPS]


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


def sequence_fields(sequence: UserSequence) -> dict[str, bytes]:
    """The fields of a user's sequence hash."""
    return {
        keys.SEQ_ITEMS: keys.encode_item_ids(sequence.item_ids),
        keys.SEQ_EVENTS: np.ascontiguousarray(sequence.events, keys.EVENT_DTYPE).tobytes(),
        keys.SEQ_TIMESTAMPS: np.ascontiguousarray(
            sequence.timestamps, keys.TIMESTAMP_DTYPE
        ).tobytes(),
    }


def generated_fields(generated: GeneratedBehaviours, created_at: int) -> dict[str, bytes]:
    """The fields of a user's generated-behaviour hash."""
    return {
        keys.GEN_VECTORS: keys.encode_vectors(generated.vectors),
        keys.GEN_ITEMS: keys.encode_item_ids(generated.item_ids),
        keys.GEN_VERSION: generated.gbr_version.encode(),
        keys.GEN_CREATED_AT: str(created_at).encode(),
    }


class RedisWriter:
    """Publishes item vectors, user sequences and generated behaviours to Redis."""

    def __init__(self, client: redis.Redis | RedisCluster, batch_size: int = 1000) -> None:
        self._client = client
        self._batch_size = batch_size

    @classmethod
    def from_url(cls, url: str, batch_size: int = 1000, cluster: bool = False) -> RedisWriter:
        """A writer to the server at ``url``, or with ``cluster`` to the cluster of that node."""
        client = RedisCluster.from_url(url) if cluster else redis.Redis.from_url(url)
        return cls(client, batch_size)

    def set_active_bundle(self, version: str) -> None:
        self._client.set(keys.ACTIVE_BUNDLE, version.encode())

    def active_bundle(self) -> str | None:
        raw = self._client.get(keys.ACTIVE_BUNDLE)
        return None if raw is None else bytes(raw).decode()  # type: ignore[arg-type]

    def write_item_vectors(
        self, bundle_version: str, item_ids: Sequence[str], vectors: npt.NDArray[np.floating]
    ) -> int:
        """Store each item's vector under the bundle version; returns the count written."""
        if len(item_ids) != len(vectors):
            raise ValueError(f"{len(item_ids)} item IDs but {len(vectors)} vectors")
        for start in range(0, len(item_ids), self._batch_size):
            stop = start + self._batch_size
            block = np.ascontiguousarray(vectors[start:stop], keys.VECTOR_DTYPE)
            mapping = {
                keys.item_vector_key(bundle_version, item_id): block[row].tobytes()
                for row, item_id in enumerate(item_ids[start:stop])
            }
            if isinstance(self._client, RedisCluster):
                self._client.mset_nonatomic(mapping)  # type: ignore[arg-type]
            else:
                self._client.mset(mapping)  # type: ignore[arg-type]
        return len(item_ids)

    def write_user_sequences(
        self,
        bundle_version: str,
        rows: Iterable[tuple[str, UserSequence, npt.NDArray[np.floating]]],
    ) -> int:
        """Store ``(user_id, sequence, sequence item vectors [L, d])`` rows, replacing old ones."""
        written = 0
        pipe = self._client.pipeline(transaction=False)
        for user_id, sequence, vectors in rows:
            if len(vectors) != len(sequence):
                raise ValueError(
                    f"user {user_id}: {len(sequence)} behaviours, {len(vectors)} vectors"
                )
            seq_key = keys.user_sequence_key(user_id)
            pipe.delete(seq_key)
            pipe.hset(seq_key, mapping=sequence_fields(sequence))  # type: ignore[arg-type]
            pipe.set(
                keys.user_sequence_vectors_key(user_id, bundle_version),
                keys.encode_sequence_vectors(sequence.item_ids, vectors),
            )
            written += 1
            if written % self._batch_size == 0:
                pipe.execute()
        pipe.execute()
        return written

    def read_sequences(self, user_ids: Sequence[str]) -> list[UserSequence | None]:
        """The stored sequence of each user (None where there is none), in one round trip."""
        pipe = self._client.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.hmget(keys.user_sequence_key(user_id), _SEQUENCE_FIELDS)
        return [decode_sequence(fields) for fields in pipe.execute()]

    def write_sequence_vectors(
        self,
        bundle_version: str,
        rows: Iterable[tuple[str, Sequence[str], npt.NDArray[np.floating]]],
    ) -> int:
        """Store only the per-version copy of each user's sequence item vectors, from ``(user_id,
        the sequence's item IDs, their vectors)``; a copy is used only with that sequence."""
        written = 0
        pipe = self._client.pipeline(transaction=False)
        for user_id, item_ids, vectors in rows:
            pipe.set(
                keys.user_sequence_vectors_key(user_id, bundle_version),
                keys.encode_sequence_vectors(item_ids, vectors),
            )
            written += 1
            if written % self._batch_size == 0:
                pipe.execute()
        pipe.execute()
        return written

    def write_generated_blocks(
        self,
        rows: Iterable[tuple[str, GeneratedBehaviours]],
        ttl_s: int,
        created_at: int | None = None,
    ) -> int:
        """Store each user's generated behaviours with a TTL; returns the count written."""
        stamp = int(time.time()) if created_at is None else created_at
        written = 0
        pipe = self._client.pipeline(transaction=False)
        for user_id, generated in rows:
            gen_key = keys.generated_behaviours_key(user_id)
            pipe.delete(gen_key)
            pipe.hset(gen_key, mapping=generated_fields(generated, stamp))  # type: ignore[arg-type]
            pipe.expire(gen_key, ttl_s)
            written += 1
            if written % self._batch_size == 0:
                pipe.execute()
        pipe.execute()
        return written

    def close(self) -> None:
        self._client.close()
