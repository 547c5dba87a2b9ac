"""Publish users' sequences (and a bundle's item vectors) into the embedded store or Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import numpy.typing as npt
import redis
from redis.cluster import RedisCluster
from tqdm import tqdm

from offline.publish.retention import expire_old_versions
from offline.publish.sequences import UserSequences
from service.bundles.loaded import ItemTable, load_item_table
from service.contracts.manifest import read_manifest
from service.stores.base import UserSequence
from service.stores.config import RedisStoreConfig
from service.stores.embedded import write_user_snapshot
from service.stores.redis_writer import RedisWriter


def publish_embedded(sequences: UserSequences, path: Path) -> Path:
    """Write the embedded store's user snapshot (read by the service at start-up)."""
    write_user_snapshot(
        path,
        sequences.user_ids,
        sequences.offsets,
        sequences.item_ids,
        sequences.events,
        sequences.ts,
    )
    return path


def publish_redis(
    sequences: UserSequences,
    bundle_dir: Path,
    store: RedisStoreConfig,
    activate: bool = True,
    gc_grace_s: int | None = None,
    replace_sequences: bool = False,
    writes: VersionWrites | None = None,
) -> dict[str, int]:
    """Write the bundle's item vectors and every user's sequence under the bundle's version,
    then (with ``activate``) flip the active bundle, so readers never see a half-written version.
    With ``store.cluster``, ``store.url`` names a node of a Redis Cluster.

    A user who already has a sequence in Redis keeps it (it may hold events appended since the
    dataset was cut, which must not be lost); only the new version's copy of its item vectors is
    written, from that live sequence. ``replace_sequences`` overwrites them from the dataset (a
    deliberate backfill).

    With ``gc_grace_s``, the keys of every other version except the one active before (the
    rollback target) then expire after that many seconds (:mod:`offline.publish.retention`).
    ``writes`` does the item and user writes (default: this process)."""
    writes = writes or VersionWrites()
    manifest = read_manifest(bundle_dir)
    table = load_item_table(bundle_dir, manifest)
    writer = RedisWriter.from_url(store.url, cluster=store.cluster)
    try:
        version = manifest.version
        previous = writer.active_bundle()
        items = writes.items(writer, version, table)
        users, kept = writes.users(writer, version, sequences, table, replace_sequences)
        if activate:
            writer.set_active_bundle(version)
    finally:
        writer.close()
    counts = {"items": items, "users": users, "kept_live_sequences": kept}
    if gc_grace_s is not None:
        keep = {version} if previous is None else {version, previous}
        url = store.url
        client = RedisCluster.from_url(url) if store.cluster else redis.Redis.from_url(url)
        try:
            expiring = expire_old_versions(client, keep, gc_grace_s)
        finally:
            client.close()
        counts["expiring_keys"] = sum(expiring.values())
    return counts


_BATCH = 512


def write_sequences(
    writer: RedisWriter,
    version: str,
    sequences: UserSequences,
    table: ItemTable,
    replace: bool,
) -> tuple[int, int]:
    """Users written, and of them how many kept the live sequence already in Redis."""
    if replace:
        return writer.write_user_sequences(version, _user_rows(sequences, table)), 0
    written = kept = 0
    rows = _user_rows(sequences, table)
    while batch := list(islice(rows, _BATCH)):
        live = writer.read_sequences([user for user, _, _ in batch])
        fresh = [row for row, found in zip(batch, live, strict=True) if found is None]
        held = [
            (user, found.item_ids, table.lookup(found.item_ids)[0])
            for (user, _, _), found in zip(batch, live, strict=True)
            if found is not None
        ]
        written += writer.write_user_sequences(version, fresh)
        written += writer.write_sequence_vectors(version, held)
        kept += len(held)
    return written, kept


#: Writes one version's item vectors; how many.
ItemsWrite = Callable[[RedisWriter, str, ItemTable], int]
#: Writes one version's users (sequences and vectors; ``replace``: overwrite live sequences);
#: how many users, and how many kept their live sequence.
UsersWrite = Callable[[RedisWriter, str, UserSequences, ItemTable, bool], tuple[int, int]]


def write_items(writer: RedisWriter, version: str, table: ItemTable) -> int:
    return writer.write_item_vectors(version, table.ids.tolist(), table.vectors)


@dataclass(frozen=True)
class VersionWrites:
    """How one version's items and users reach Redis: through the publishing process's own
    writer by default, or spread over Ray workers (:func:`offline.scale.publish.ray_writes`)."""

    items: ItemsWrite = write_items
    users: UsersWrite = write_sequences


def _user_rows(
    sequences: UserSequences, table: ItemTable
) -> Iterator[tuple[str, UserSequence, npt.NDArray[np.floating]]]:
    for user in tqdm(range(len(sequences)), desc="users", unit="user", mininterval=1.0):
        rows = sequences.of(user)
        item_ids = sequences.item_ids[rows]
        sequence = UserSequence(
            item_ids=item_ids.tolist(), events=sequences.events[rows], timestamps=sequences.ts[rows]
        )
        vectors, _known = table.lookup(sequence.item_ids)
        yield str(sequences.user_ids[user]), sequence, vectors
