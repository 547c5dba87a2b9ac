"""The nearline job on Ray: :func:`offline.gbr.nearline.run_nearline` with generation (and, for
Redis, the writes) spread over workers, through the block writer given to it.

The selection (:func:`users_to_generate`: everyone with events, or in incremental mode only the
users with events since the last run and the blocks older than half the TTL), the state file and
its timing (saved after the write, so a failed write is retried rather than skipped) are the
single-process job's own. Redis blocks are written by the workers, shard by shard; the embedded
snapshot is one file, rewritten by the driver (:func:`write_embedded`).
"""

from __future__ import annotations

from offline.data.canonical import Dataset
from offline.gbr.checkpoint import GBRModel
from offline.gbr.generate import GenerationConfig
from offline.gbr.nearline import BlockWriter, Ints, write_embedded
from offline.scale.generate import generate_users_ray, write_blocks_ray
from offline.scale.publish import check_reachable
from offline.scale.session import WorkerPool
from service.bundles.loaded import ItemTable
from service.stores.config import EmbeddedStoreConfig, StoreConfig


def ray_block_writer(
    model: GBRModel,
    dataset: Dataset,
    config: GenerationConfig,
    item_table: ItemTable | None,
    store: StoreConfig,
    ttl_s: int = 7 * 86_400,
    pool: WorkerPool | None = None,
) -> BlockWriter:
    """The ``write_blocks`` of :func:`offline.gbr.nearline.run_nearline` on Ray: blocks generated
    by the workers, then the embedded snapshot rewritten by the driver, or written to Redis by the
    workers shard by shard."""
    workers = pool or WorkerPool()

    def write_blocks(users: Ints, now: int) -> int:
        if isinstance(store, EmbeddedStoreConfig):
            generated = generate_users_ray(model, dataset, users, config, item_table, pool=workers)
            return write_embedded(generated, store.users_path)
        check_reachable(store)
        return write_blocks_ray(
            model, dataset, users, config, item_table, store, ttl_s, created_at=now, pool=workers
        )

    return write_blocks
