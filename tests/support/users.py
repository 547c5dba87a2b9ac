"""The users the service tests rank for, written to either store through its writer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.bundles.loaded import LoadedBundle
from service.stores.base import GeneratedBehaviours, UserSequence
from service.stores.embedded import GeneratedBlocks, write_user_snapshot
from service.stores.redis_writer import RedisWriter

NOW = 1_764_000_000
GBR_VERSION = "gbr-test"


@dataclass(frozen=True)
class DemoUsers:
    sequences: dict[str, UserSequence]
    generated: dict[str, GeneratedBehaviours]


def demo_users(bundle: LoadedBundle) -> DemoUsers:
    """``u1`` liked i3 (and has generated i4, i6), ``u2`` liked i5, ``u_empty`` has no history."""
    sequences = {
        "u1": UserSequence.of(["i3", "i3", "i2"], [1, 2, 1], [NOW - 3000, NOW - 2000, NOW - 1000]),
        "u2": UserSequence.of(["i5"], [3], [NOW - 60]),
        "u_empty": UserSequence.empty(),
    }
    gen_vectors, _ = bundle.items.lookup(["i4", "i6"])
    generated = {"u1": GeneratedBehaviours(["i4", "i6"], gen_vectors, GBR_VERSION)}
    return DemoUsers(sequences, generated)


def write_embedded(path: Path, users: DemoUsers) -> Path:
    ids = list(users.sequences)
    seqs = [users.sequences[u] for u in ids]
    gen_ids = list(users.generated)
    gens = [users.generated[u] for u in gen_ids]
    write_user_snapshot(
        path,
        user_ids=ids,
        offsets=np.cumsum([0] + [len(s) for s in seqs]),
        items=[i for s in seqs for i in s.item_ids],
        events=np.concatenate([s.events for s in seqs]),
        ts=np.concatenate([s.timestamps for s in seqs]),
        generated=GeneratedBlocks(
            user_ids=np.asarray(gen_ids),
            offsets=np.cumsum([0] + [len(g) for g in gens]),
            items=np.asarray([i for g in gens for i in g.item_ids]),
            vectors=np.concatenate([g.vectors for g in gens]),
            version=GBR_VERSION,
        ),
    )
    return path


def write_redis(url: str, bundle: LoadedBundle, users: DemoUsers, cluster: bool = False) -> None:
    writer = RedisWriter.from_url(url, batch_size=2, cluster=cluster)
    table_ids = [f"i{n}" for n in range(len(bundle.items))]
    table_vectors, _ = bundle.items.lookup(table_ids)
    writer.write_item_vectors(bundle.version, table_ids, table_vectors)
    writer.write_user_sequences(
        bundle.version,
        ((u, s, bundle.items.lookup(s.item_ids)[0]) for u, s in users.sequences.items()),
    )
    writer.write_generated_blocks(users.generated.items(), ttl_s=3600)
    writer.set_active_bundle(bundle.version)
    writer.close()
