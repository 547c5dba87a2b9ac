"""Publish users' sequences (and a bundle's item vectors) into the embedded store or Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from offline.publish.sequences import UserSequences
from service.contracts.manifest import BundleManifest, read_manifest
from service.stores.base import UserSequence
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


class ItemTable:
    """A bundle's item table, read for publishing (the service has its own reader)."""

    def __init__(self, bundle_dir: Path) -> None:
        self.manifest: BundleManifest = read_manifest(bundle_dir)
        table = self.manifest.item_table
        self.ids: npt.NDArray[np.str_] = np.load(bundle_dir / table.ids_file)
        self.vectors: npt.NDArray[np.floating] = np.load(bundle_dir / table.vectors_file)
        self._rows = {item_id: row for row, item_id in enumerate(self.ids.tolist())}
        self._default = np.asarray(table.default_vector, dtype=self.vectors.dtype)

    def vectors_of(self, item_ids: npt.NDArray[np.str_]) -> npt.NDArray[np.floating]:
        rows = [self._rows.get(item_id, -1) for item_id in item_ids.tolist()]
        out = self.vectors[np.maximum(rows, 0)].copy()
        out[np.asarray(rows) < 0] = self._default
        return out


def publish_redis(
    sequences: UserSequences, bundle_dir: Path, redis_url: str, activate: bool = True
) -> dict[str, int]:
    """Write the bundle's item vectors and every user's sequence under the bundle's version,
    then (with ``activate``) flip the active bundle, so readers never see a half-written version."""
    table = ItemTable(bundle_dir)
    version = table.manifest.version
    writer = RedisWriter.from_url(redis_url)
    try:
        items = writer.write_item_vectors(version, table.ids.tolist(), table.vectors)
        users = writer.write_user_sequences(version, _user_rows(sequences, table))
        if activate:
            writer.set_active_bundle(version)
    finally:
        writer.close()
    return {"items": items, "users": users}


def _user_rows(
    sequences: UserSequences, table: ItemTable
) -> Iterator[tuple[str, UserSequence, npt.NDArray[np.floating]]]:
    for user in tqdm(range(len(sequences)), desc="users", unit="user", mininterval=1.0):
        rows = sequences.of(user)
        item_ids = sequences.item_ids[rows]
        sequence = UserSequence(
            item_ids=item_ids.tolist(), events=sequences.events[rows], timestamps=sequences.ts[rows]
        )
        yield str(sequences.user_ids[user]), sequence, table.vectors_of(item_ids)
