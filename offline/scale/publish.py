"""Publishing to Redis (or a Redis Cluster) from Ray: shards of items and of users written in
parallel, each shard through its own pipelined :class:`RedisWriter`; the active version flipped
once, by the driver, after every shard is written.

The keys and values are :func:`offline.publish.stores.publish_redis`'s: a user shard is written by
the very function that writes the single-process job's users (a user already in Redis keeps its
live sequence, and only the new version's copy of its vectors is written), and ``gc_grace_s`` then
gives other versions' keys their expiry the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import ray
import ray.data

from offline.publish.sequences import UserSequences
from offline.publish.stores import VersionWrites, write_sequences
from offline.scale import shards as sharding
from offline.scale.session import WorkerPool
from service.bundles.loaded import ItemTable
from service.stores.config import RedisStoreConfig
from service.stores.redis_writer import RedisWriter


def write_item_shards(
    batch: pa.Table, store: RedisStoreConfig, version: str
) -> dict[str, npt.NDArray[Any]]:
    """A ``map_batches`` function: each shard's item vectors under ``version``."""
    counts = []
    for row in range(len(batch)):
        shard = sharding.shard_arrays(batch, row)
        vectors = shard["vectors"].reshape(len(shard["ids"]), shard["dim"])
        writer = RedisWriter.from_url(store.url, cluster=store.cluster)
        try:
            counts.append(writer.write_item_vectors(version, shard["ids"].tolist(), vectors))
        finally:
            writer.close()
    return {"written": np.asarray(counts, np.int64)}


class SequenceShardWriter:
    """A Ray Data callable class: the item table, built once per worker, and each shard's users
    written as the single-process publisher writes them. Output rows: one per shard, ``written``
    and ``kept`` (users who kept their live sequence)."""

    def __init__(
        self, table: Any, store: RedisStoreConfig, version: str, replace_sequences: bool
    ) -> None:
        self.table = ItemTable(*ray.get(table))
        self.store, self.version, self.replace = store, version, replace_sequences

    def __call__(self, batch: pa.Table) -> dict[str, npt.NDArray[Any]]:
        parts = [self._shard(sharding.shard_arrays(batch, row)) for row in range(len(batch))]
        return sharding.concatenated(parts)

    def _shard(self, shard: dict[str, Any]) -> dict[str, npt.NDArray[Any]]:
        sequences = UserSequences(
            user_ids=shard["user_ids"],
            offsets=np.asarray(shard["offsets"], np.int64),
            item_ids=shard["item_ids"],
            events=np.asarray(shard["events"], np.uint8),
            ts=np.asarray(shard["ts"], np.int64),
        )
        writer = RedisWriter.from_url(self.store.url, cluster=self.store.cluster)
        try:
            written, kept = write_sequences(
                writer, self.version, sequences, self.table, self.replace
            )
        finally:
            writer.close()
        return {"written": np.asarray([written], np.int64), "kept": np.asarray([kept], np.int64)}


def ray_writes(store: RedisStoreConfig, pool: WorkerPool | None = None) -> VersionWrites:
    """:func:`offline.publish.stores.publish_redis`'s writes from Ray workers: shards of items
    (tasks) and of users (actors holding the item table), each through its own pipelined writer;
    ``publish_redis`` still flips the active version once, after them."""
    workers = pool or WorkerPool()
    return VersionWrites(
        items=lambda _, version, table: _write_items(table, store, version, workers),
        users=lambda _, version, sequences, table, replace: _write_users(
            sequences, table, store, version, replace, workers
        ),
    )


def check_reachable(store: RedisStoreConfig) -> None:
    """Raise the client's connection error now when Redis cannot be reached, rather than one
    from every worker later."""
    writer = RedisWriter.from_url(store.url, cluster=store.cluster)
    try:
        writer.active_bundle()
    finally:
        writer.close()


def _write_items(table: ItemTable, store: RedisStoreConfig, version: str, pool: WorkerPool) -> int:
    if len(table.ids) == 0:
        return 0
    dim = table.vectors.shape[1]
    shards = sharding.shard_dataset(
        sharding.shard_row(
            {"ids": table.ids[a:b], "vectors": np.asarray(table.vectors[a:b])}, {"dim": dim}
        )
        for a, b in sharding.ranges(len(table.ids), pool.shard_rows)
    )
    stage = shards.map_batches(
        partial(write_item_shards, store=store, version=version),
        batch_size=1,
        batch_format="pyarrow",
        compute=ray.data.TaskPoolStrategy(size=pool.size(shards.count())),
    )
    return sum(int(batch["written"].sum()) for batch in sharding.collected(stage))


def _write_users(
    sequences: UserSequences,
    table: ItemTable,
    store: RedisStoreConfig,
    version: str,
    replace: bool,
    pool: WorkerPool,
) -> tuple[int, int]:
    if len(sequences) == 0:
        return 0, 0
    arrays = (table.ids, np.asarray(table.vectors), table.default_vector)
    shards = sharding.shard_dataset(_user_rows(sequences, pool.shard_rows))
    stage = shards.map_batches(
        SequenceShardWriter,
        batch_size=1,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=pool.size(shards.count())),
        fn_constructor_kwargs={
            "table": ray.put(arrays),
            "store": store,
            "version": version,
            "replace_sequences": replace,
        },
        # The single-process writer's progress bar, once per shard, would flood the driver's log.
        runtime_env={"env_vars": {"TQDM_DISABLE": "1"}},
    )
    written = kept = 0
    for batch in sharding.collected(stage):
        written += int(batch["written"].sum())
        kept += int(batch["kept"].sum())
    return written, kept


def _user_rows(sequences: UserSequences, size: int) -> Iterator[pa.Table]:
    for a, b in sharding.ranges(len(sequences), size):
        first, last = int(sequences.offsets[a]), int(sequences.offsets[b])
        yield sharding.shard_row(
            {
                "user_ids": sequences.user_ids[a:b],
                "offsets": sequences.offsets[a : b + 1] - first,
                "item_ids": sequences.item_ids[first:last],
                "events": sequences.events[first:last],
                "ts": sequences.ts[first:last],
            }
        )
