"""GBR generation on Ray Data: shards of whole generation batches, the generator loaded once per
worker (a callable class on an actor pool). ``WorkerPool.gpus_per_worker`` reserves each worker a
GPU share; where the generator's tensors live is :mod:`offline.gbr.generate`'s choice (the CPU).

Draws are keyed per (user, history length) (:mod:`offline.gbr.sampling`), so a block never
depends on the shard a user lands in. The shards go further and repeat the single-process
batches: :func:`offline.gbr.generate.generate_for_prefixes` groups users by window width and cuts
each group, in order, into batches of ``config.batch_size``; a shard here is a run of whole
batches of one group, so a worker multiplies the very same matrices and its blocks and their
confidences are those of :func:`offline.gbr.nearline.generate_users`, bit for bit. Beyond-log
slots (:mod:`offline.gbr.beyond`) are filled per shard, in batches of its own rows: row-wise
arithmetic like generation's, whose independence of batching the generator's tests check.

Each shard carries its users' sequences (:class:`ShardSequences`), so a worker needs nothing
else of the dataset; blocks come back to the driver (:func:`generate_users_ray`) or are written
to Redis by the workers themselves (:func:`write_blocks_ray`), each with its own writer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import ray
import ray.data
import torch

from offline.data.canonical import Dataset
from offline.gbr.beyond import generate_blocks, item_groups
from offline.gbr.checkpoint import GBRModel
from offline.gbr.generate import GeneratedItems, GenerationConfig, window_widths
from offline.gbr.nearline import GeneratedUsers, block_vectors
from offline.gbr.sequences import BehaviourSequences, behaviour_sequences
from offline.scale.session import WorkerPool
from offline.scale.shards import (
    collected,
    concatenated,
    jagged_take,
    ranges,
    shard_arrays,
    shard_dataset,
    shard_row,
)
from service.bundles.loaded import ItemTable
from service.stores.config import RedisStoreConfig
from service.stores.redis_writer import RedisWriter

Ints = npt.NDArray[np.int64]
Strings = npt.NDArray[np.str_]


@dataclass(frozen=True)
class ShardSequences(BehaviourSequences):
    """Some users' sequences: row ``r`` is user ``users[r]`` of the whole dataset. Generation
    keys its draws by that index, so a shard keeps it: :meth:`windows` (and ``histories``, which
    reads through it) take dataset indices; the other methods are by row."""

    users: Ints = field(default_factory=lambda: np.zeros(0, np.int64))

    def rows_of(self, users: Ints) -> Ints:
        """The rows of dataset users; a ``KeyError`` for a user not in the shard."""
        users = np.asarray(users, np.int64)
        order = np.argsort(self.users, kind="stable")
        found = np.searchsorted(self.users, users, sorter=order)
        inside = found < len(order)
        rows = order[np.where(inside, found, 0)] if len(order) else found
        if not (inside.all() and np.array_equal(self.users[rows], users)):
            raise KeyError("a user outside the shard")
        return rows.astype(np.int64)

    def windows(self, users: Ints, lengths: Ints, width: int) -> Ints:
        return super().windows(self.rows_of(users), lengths, width)


@dataclass(frozen=True)
class GenerationPlan:
    """``order``: positions in the selection of users, in the order the single-process path
    generates them; ``bounds``: each shard's ``[start, stop)`` in ``order``."""

    order: Ints
    bounds: list[tuple[int, int]]


def generation_plan(
    lengths: Ints, window: int, batch_size: int, shard_users: int
) -> GenerationPlan:
    """Shards of whole batches (as many as fit in ``shard_users``, at least one) of one window
    width each, widths in the order :func:`generate_for_prefixes` takes them."""
    widths = window_widths(np.asarray(lengths, np.int64), window)
    per_shard = max(1, shard_users // batch_size) * batch_size
    groups = [np.flatnonzero(widths == width) for width in np.unique(widths).tolist()]
    bounds, start = [], 0
    for group in groups:
        bounds += [(start + a, start + b) for a, b in ranges(len(group), per_shard)]
        start += len(group)
    order = np.concatenate(groups).astype(np.int64) if groups else np.zeros(0, np.int64)
    return GenerationPlan(order, bounds)


def generated_users(
    user_ids: Strings,
    block: GeneratedItems,
    catalogue_ids: Strings,
    table: ItemTable | None,
    model: GBRModel,
) -> GeneratedUsers:
    """The users' blocks as :func:`offline.gbr.nearline.generate_users` returns them."""
    return GeneratedUsers(
        user_ids=user_ids,
        item_idx=block.item_idx,
        item_ids=[catalogue_ids[row[row >= 0]].tolist() for row in block.item_idx],
        vectors=block_vectors(block, catalogue_ids, table, model),
        confidence=block.confidence,
        gbr_version=model.version,
    )


class BlockGenerator:
    """A Ray Data callable class: the generator, loaded once per worker, over whole shards.
    Output rows: ``position`` (in the selection), ``item_idx`` and ``confidence`` ``[K]``."""

    def __init__(self, model: Any, groups: Any, config: GenerationConfig, threads: int) -> None:
        self.model: GBRModel = ray.get(model)
        # A copy: the object store's arrays are read-only, and PyTorch wraps this one.
        self.groups: Ints | None = None if groups is None else np.array(ray.get(groups))
        self.config, self.threads = config, threads

    def __call__(self, batch: pa.Table) -> dict[str, npt.NDArray[Any]]:
        return concatenated([self.shard(shard_arrays(batch, row)) for row in range(len(batch))])

    def generate(self, shard: dict[str, Any]) -> GeneratedItems:
        # Here, not in __init__: Ray Data calls the worker from a thread of its own.
        torch.set_num_threads(self.threads)
        users, items = shard["user"], shard["items"]
        sequences = ShardSequences(
            offsets=shard["offsets"], items=items, ts=np.zeros(len(items), np.int64), users=users
        )
        return generate_blocks(
            self.model, sequences, users, shard["length"], self.config, self.groups
        )

    def shard(self, shard: dict[str, Any]) -> dict[str, npt.NDArray[Any]]:
        block = self.generate(shard)
        return {
            "position": shard["position"],
            "item_idx": block.item_idx,
            "confidence": block.confidence,
        }


class BlockWriter(BlockGenerator):
    """Generates whole shards and writes their blocks to Redis, each shard through its own
    :class:`RedisWriter`. Output rows: one per shard, ``written``."""

    def __init__(
        self,
        model: Any,
        groups: Any,
        config: GenerationConfig,
        threads: int,
        catalogue_ids: Any,
        table: Any,
        store: RedisStoreConfig,
        ttl_s: int,
        created_at: int,
    ) -> None:
        super().__init__(model, groups, config, threads)
        self.catalogue_ids: Strings = ray.get(catalogue_ids)
        self.table = None if table is None else ItemTable(*ray.get(table))
        self.store, self.ttl_s, self.created_at = store, ttl_s, created_at

    def shard(self, shard: dict[str, Any]) -> dict[str, npt.NDArray[Any]]:
        block = self.generate(shard)
        users = generated_users(shard["user_id"], block, self.catalogue_ids, self.table, self.model)
        writer = RedisWriter.from_url(self.store.url, cluster=self.store.cluster)
        try:
            written = writer.write_generated_blocks(users.rows(), self.ttl_s, self.created_at)
        finally:
            writer.close()
        return {"written": np.asarray([written], np.int64)}


def generate_users_ray(
    model: GBRModel,
    dataset: Dataset,
    users: Ints,
    config: GenerationConfig,
    item_table: ItemTable | None = None,
    *,
    pool: WorkerPool | None = None,
) -> GeneratedUsers:
    """:func:`offline.gbr.nearline.generate_users` on Ray: the same blocks, in the same order."""
    pool = pool or WorkerPool()
    users = np.asarray(users, np.int64)
    items = np.full((len(users), config.k), -1, np.int64)
    confidence = np.zeros((len(users), config.k), np.float32)
    shards = _shards(model, dataset, users, config, pool)
    if shards is not None:
        stage = _map(shards, BlockGenerator, _generator_args(model, dataset, config), pool)
        for batch in collected(stage):
            items[batch["position"]] = batch["item_idx"]
            confidence[batch["position"]] = batch["confidence"]
    block = GeneratedItems(items, confidence)
    return generated_users(
        dataset.user_ids[users], block, dataset.catalogue.item_ids, item_table, model
    )


def write_blocks_ray(
    model: GBRModel,
    dataset: Dataset,
    users: Ints,
    config: GenerationConfig,
    item_table: ItemTable | None,
    store: RedisStoreConfig,
    ttl_s: int,
    *,
    created_at: int,
    pool: WorkerPool | None = None,
) -> int:
    """Generate ``users``' blocks and write them to Redis from the workers, as
    :func:`offline.gbr.nearline.write_redis` writes :func:`generate_users`' blocks (stamped
    ``created_at``); returns the number of users written."""
    pool = pool or WorkerPool()
    shards = _shards(model, dataset, np.asarray(users, np.int64), config, pool)
    if shards is None:
        return 0
    table = None
    if item_table is not None:
        arrays = (item_table.ids, np.asarray(item_table.vectors), item_table.default_vector)
        table = ray.put(arrays)
    arguments = _generator_args(model, dataset, config) | {
        "catalogue_ids": ray.put(dataset.catalogue.item_ids),
        "table": table,
        "store": store,
        "ttl_s": ttl_s,
        "created_at": created_at,
    }
    stage = _map(shards, BlockWriter, arguments, pool)
    return sum(int(batch["written"].sum()) for batch in collected(stage))


def _shards(
    model: GBRModel, dataset: Dataset, users: Ints, config: GenerationConfig, pool: WorkerPool
) -> ray.data.Dataset | None:
    """The selection's shards (None when it is empty), after the driver-side checks that the
    single-process path makes before it generates."""
    model.check_catalogue(dataset.catalogue.item_ids)
    if config.k > model.config.max_slots:
        raise ValueError(
            f"k={config.k} exceeds the {model.config.max_slots} slots GBR was trained for"
        )
    sequences = behaviour_sequences(dataset.behaviours, len(dataset.user_ids))
    lengths = sequences.lengths()[users]
    window = model.config.window_items - config.k
    plan = generation_plan(lengths, window, config.batch_size, pool.shard_rows)
    if not plan.bounds:
        return None
    return shard_dataset(_shard_rows(plan, sequences, users, lengths, dataset.user_ids))


def _shard_rows(
    plan: GenerationPlan,
    sequences: BehaviourSequences,
    users: Ints,
    lengths: Ints,
    user_ids: Strings,
) -> Iterator[pa.Table]:
    for start, stop in plan.bounds:
        positions = plan.order[start:stop]
        chosen = users[positions]
        offsets, index = jagged_take(sequences.offsets, chosen)
        yield shard_row(
            {
                "position": positions,
                "user": chosen,
                "length": lengths[positions],
                "offsets": offsets,
                "items": sequences.items[index],
                "user_id": user_ids[chosen],
            }
        )


def _generator_args(model: GBRModel, dataset: Dataset, config: GenerationConfig) -> dict[str, Any]:
    groups = item_groups(dataset.catalogue) if config.beyond_slots else None
    return {
        "model": ray.put(model),
        "groups": None if groups is None else ray.put(groups),
        "config": config,
        "threads": 1,  # one per worker: each worker holds one CPU of the pool
    }


def _map(
    shards: ray.data.Dataset, worker: type, arguments: dict[str, Any], pool: WorkerPool
) -> ray.data.Dataset:
    return shards.map_batches(
        worker,
        batch_size=1,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=pool.size(shards.count())),
        num_gpus=pool.gpus_per_worker or None,
        fn_constructor_kwargs=arguments,
    )
