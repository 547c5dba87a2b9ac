"""The nearline job: generate every (or every recently active) user's block, write it to a store.

Blocks are written as the bundle's fused item vectors, so the ranker reads them in its own space:
to Redis (``RedisWriter.write_generated_blocks``, with a TTL and the GBR version) or into the
embedded snapshot, whose users' sequences are kept as they are.

Incremental runs keep a small state file: per user, the latest event time seen by the last run
and when the user's block was generated, with the GBR version and K that run used. A user is
regenerated when they have events after that time, or when their block is older than
``refresh_after_s`` (so a Redis TTL never silently empties a quiet user); every user is, when the
model or K changed, since old blocks would then be stale.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from offline.data.canonical import Dataset
from offline.gbr.beyond import generate_blocks, item_groups
from offline.gbr.checkpoint import GBRModel
from offline.gbr.generate import GeneratedItems, GenerationConfig
from offline.gbr.sequences import behaviour_sequences
from service.bundles.loaded import ItemTable
from service.stores.base import GeneratedBehaviours
from service.stores.config import EmbeddedStoreConfig, RedisStoreConfig, StoreConfig
from service.stores.redis_writer import RedisWriter
from service.stores.snapshot import GeneratedBlocks, UserSnapshot

log = logging.getLogger(__name__)

Ints = npt.NDArray[np.int64]
#: Generates and writes the blocks of the given dataset rows of users at run time ``now``;
#: returns how many blocks it wrote.
BlockWriter = Callable[[Ints, int], int]
Strings = npt.NDArray[np.str_]


@dataclass(frozen=True)
class GenerationState:
    """What the last runs covered: per user the latest event time seen and when the block was
    generated (-1: never), and the model and K used."""

    user_ids: Strings
    last_ts: Ints
    generated_at: Ints
    gbr_version: str
    k: int

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps({"gbr_version": self.gbr_version, "k": self.k})
        with path.open("wb") as handle:
            np.savez(
                handle,
                user_ids=self.user_ids,
                last_ts=self.last_ts,
                generated_at=self.generated_at,
                meta=np.asarray(meta),
            )

    @classmethod
    def load(cls, path: Path) -> GenerationState | None:
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return cls(
                data["user_ids"],
                data["last_ts"],
                data["generated_at"],
                meta["gbr_version"],
                int(meta["k"]),
            )

    def aligned(self, user_ids: Strings) -> tuple[Ints, Ints]:
        """``(last_ts, generated_at)`` for ``user_ids`` (-1 for users the state does not know)."""
        if len(self.user_ids) == 0:
            unknown = np.full(len(user_ids), -1, np.int64)
            return unknown, unknown.copy()
        row = {user: i for i, user in enumerate(self.user_ids.tolist())}
        index = np.array([row.get(user, -1) for user in user_ids.tolist()], np.int64)
        known = index >= 0
        last = np.where(known, self.last_ts[np.maximum(index, 0)], -1)
        made = np.where(known, self.generated_at[np.maximum(index, 0)], -1)
        return last.astype(np.int64), made.astype(np.int64)


@dataclass(frozen=True)
class GeneratedUsers:
    """The users a run generated, their items (IDs) and block vectors ``[n, K, d]``."""

    user_ids: Strings
    item_idx: Ints
    item_ids: list[list[str]]
    vectors: npt.NDArray[np.float32]
    confidence: npt.NDArray[np.float32]
    gbr_version: str

    def __len__(self) -> int:
        return len(self.user_ids)

    def rows(self) -> Iterator[tuple[str, GeneratedBehaviours]]:
        """``(user ID, block)`` per user, padding slots dropped, as the stores take them."""
        for row, user in enumerate(self.user_ids.tolist()):
            keep = self.item_idx[row] >= 0
            yield (
                user,
                GeneratedBehaviours(self.item_ids[row], self.vectors[row][keep], self.gbr_version),
            )


def latest_event_ts(dataset: Dataset) -> Ints:
    """Each user's latest event time (-1 for a user with none)."""
    last = np.full(len(dataset.user_ids), -1, np.int64)
    np.maximum.at(last, dataset.behaviours.user_idx.astype(np.int64), dataset.behaviours.ts)
    return last


def users_to_generate(
    dataset: Dataset,
    state: GenerationState | None,
    gbr_version: str,
    k: int,
    *,
    now: int,
    refresh_after_s: int | None = None,
) -> Ints:
    """Users with events; with a matching ``state``, only those with events since it or whose
    block is older than ``refresh_after_s``."""
    last = latest_event_ts(dataset)
    active = last >= 0
    if state is None or state.gbr_version != gbr_version or state.k != k:
        return np.flatnonzero(active)
    seen, made = state.aligned(dataset.user_ids)
    stale = made < 0
    if refresh_after_s is not None:
        stale |= made <= now - refresh_after_s
    return np.flatnonzero(active & ((last > seen) | stale))


def generate_users(
    model: GBRModel,
    dataset: Dataset,
    users: Ints,
    config: GenerationConfig,
    item_table: ItemTable | None = None,
    *,
    progress: bool = False,
) -> GeneratedUsers:
    """Blocks for ``users`` from all their events, the last ``config.beyond_slots`` given to
    items beyond the history's main department (:mod:`offline.gbr.beyond`, as the ranker's
    training blocks may be); vectors from ``item_table`` (the bundle's fused vectors) when
    given, else the semantic vectors."""
    model.check_catalogue(dataset.catalogue.item_ids)
    sequences = behaviour_sequences(dataset.behaviours, len(dataset.user_ids))
    users = np.asarray(users, np.int64)
    groups = item_groups(dataset.catalogue) if config.beyond_slots else None
    lengths = sequences.lengths()[users]
    generated = generate_blocks(model, sequences, users, lengths, config, groups, progress=progress)
    catalogue_ids = dataset.catalogue.item_ids
    item_ids = [catalogue_ids[row[row >= 0]].tolist() for row in generated.item_idx]
    return GeneratedUsers(
        user_ids=dataset.user_ids[users],
        item_idx=generated.item_idx,
        item_ids=item_ids,
        vectors=block_vectors(generated, catalogue_ids, item_table, model),
        confidence=generated.confidence,
        gbr_version=model.version,
    )


def block_vectors(
    generated: GeneratedItems, catalogue_ids: Strings, table: ItemTable | None, model: GBRModel
) -> npt.NDArray[np.float32]:
    if table is None:
        return generated.vectors(model.semantic_vectors)
    flat = np.where(generated.item_idx >= 0, generated.item_idx, 0).reshape(-1)
    vectors, known = table.lookup(catalogue_ids[flat].tolist())
    if not known.all():
        log.warning("%d generated items are not in the bundle's table", int((~known).sum()))
    shaped = vectors.reshape(*generated.item_idx.shape, table.dim)
    return np.where((generated.item_idx >= 0)[..., None], shaped, 0.0).astype(np.float32)


def write_redis(generated: GeneratedUsers, store: RedisStoreConfig, ttl_s: int) -> int:
    """Write the blocks with a TTL (to a Redis Cluster with ``store.cluster``); returns the
    number of users written."""
    writer = RedisWriter.from_url(store.url, cluster=store.cluster)
    try:
        return writer.write_generated_blocks(generated.rows(), ttl_s)
    finally:
        writer.close()


def write_embedded(generated: GeneratedUsers, users_path: Path) -> int:
    """Rewrite the snapshot with the blocks added, its sequences untouched. Blocks of users
    not regenerated are kept when they came from the same GBR version; returns the block count."""
    if not users_path.is_file():
        raise FileNotFoundError(f"{users_path}: publish the users' sequences before their blocks")
    snapshot = UserSnapshot.load(users_path)
    blocks = {user: (ids, vectors) for user, ids, vectors in _rows(generated)}
    kept = snapshot.generated_blocks
    if kept is not None and kept.version == generated.gbr_version:
        for row, user in enumerate(kept.user_ids.tolist()):
            if user not in blocks:
                part = slice(int(kept.offsets[row]), int(kept.offsets[row + 1]))
                blocks[user] = (kept.items[part].tolist(), kept.vectors[part])
    users = sorted(blocks)
    dim = generated.vectors.shape[-1]
    counts = [len(blocks[user][0]) for user in users]
    items = [item for user in users for item in blocks[user][0]]
    vectors = [np.asarray(blocks[user][1], np.float32).reshape(-1, dim) for user in users]
    snapshot.write_with_generated(
        users_path,
        GeneratedBlocks(
            user_ids=np.asarray(users, np.str_),
            offsets=np.concatenate(([0], np.cumsum(counts))).astype(np.int64),
            items=np.asarray(items, np.str_),
            vectors=np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32),
            version=generated.gbr_version,
        ),
    )
    return len(users)


def _rows(generated: GeneratedUsers) -> Iterator[tuple[str, list[str], npt.NDArray[np.float32]]]:
    for user, block in generated.rows():
        yield user, block.item_ids, block.vectors


def next_state(
    dataset: Dataset,
    previous: GenerationState | None,
    generated_users: Ints,
    gbr_version: str,
    k: int,
    now: int,
) -> GenerationState:
    """The state after a successful run: every user's latest event time now; the generation
    time of the users just generated, the previous one of the others (same model and K)."""
    made = np.full(len(dataset.user_ids), -1, np.int64)
    if previous is not None and previous.gbr_version == gbr_version and previous.k == k:
        made = previous.aligned(dataset.user_ids)[1]
    made[generated_users] = now
    return GenerationState(dataset.user_ids, latest_event_ts(dataset), made, gbr_version, k)


def run_nearline(
    model: GBRModel,
    dataset: Dataset,
    config: GenerationConfig,
    *,
    item_table: ItemTable | None,
    state_path: Path,
    incremental: bool,
    store: StoreConfig,
    ttl_s: int = 7 * 86_400,
    progress: bool = False,
    write_blocks: BlockWriter | None = None,
) -> dict[str, object]:
    """Select users, generate, write to ``store`` (the embedded snapshot at its ``users_path``,
    or Redis), then save the state
    (after the write, so a failed write is retried rather than skipped next time). Incremental
    runs also refresh blocks older than half the TTL, before Redis drops them.
    ``write_blocks`` replaces the generation and the write (:mod:`offline.scale` spreads them
    over Ray workers); the selection, the state and the summary stay these."""
    started = time.perf_counter()
    now = int(time.time())
    previous = GenerationState.load(state_path)
    state = previous if incremental else None
    users = users_to_generate(
        dataset, state, model.version, config.k, now=now, refresh_after_s=ttl_s // 2
    )
    if write_blocks is None:
        generated = generate_users(model, dataset, users, config, item_table, progress=progress)
        if isinstance(store, EmbeddedStoreConfig):
            written = write_embedded(generated, store.users_path)
        else:
            written = write_redis(generated, store, ttl_s)
    else:
        written = write_blocks(users, now)
    next_state(dataset, previous, users, model.version, config.k, now).save(state_path)
    seconds = time.perf_counter() - started
    return {
        "gbr_version": model.version,
        "store": store.type,
        "users_generated": len(users),
        "blocks_written": written,
        "seconds": round(seconds, 2),
        "users_per_s": round(len(users) / max(seconds, 1e-9), 1),
    }
