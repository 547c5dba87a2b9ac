"""The nearline job writes blocks the service reads: embedded snapshot and a real Redis."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import redis

from offline.data.canonical import Dataset
from offline.data.synthetic import GroundTruth
from offline.gbr.beyond import item_groups
from offline.gbr.checkpoint import GBRModel
from offline.gbr.fusion import blended_blocks
from offline.gbr.generate import GenerationConfig, generate_for_users
from offline.gbr.nearline import GenerationState, run_nearline
from offline.gbr.sequences import behaviour_sequences
from offline.publish.sequences import latest_sequences
from offline.publish.stores import publish_embedded
from service.bundles.loaded import ItemTable
from service.contracts import keys
from service.stores.config import EmbeddedStoreConfig, RedisStoreConfig
from service.stores.snapshot import UserSnapshot
from tests.support.gbr import with_new_events

CONFIG = GenerationConfig(k=4, steps=2)
DIM = 8


@pytest.fixture
def table(tiny: tuple[Dataset, GroundTruth]) -> ItemTable:
    ids = tiny[0].catalogue.item_ids
    vectors = np.random.default_rng(0).normal(size=(len(ids), DIM)).astype(np.float16)
    return ItemTable(ids, vectors, np.zeros(DIM, np.float32))


def _embedded(model, dataset, table, tmp_path: Path, incremental: bool = False, config=CONFIG):  # type: ignore[no-untyped-def]
    return run_nearline(
        model, dataset, config, item_table=table, state_path=tmp_path / "state.npz",
        incremental=incremental, store=EmbeddedStoreConfig(users_path=tmp_path / "users.npz"),
    )  # fmt: skip


def test_embedded_keeps_sequences_and_adds_blocks(
    item_model: GBRModel, tiny: tuple[Dataset, GroundTruth], table: ItemTable, tmp_path: Path
) -> None:
    dataset = tiny[0]
    publish_embedded(latest_sequences(dataset, 50), tmp_path / "users.npz")
    before = UserSnapshot.load(tmp_path / "users.npz")
    summary = _embedded(item_model, dataset, table, tmp_path)
    after = UserSnapshot.load(tmp_path / "users.npz")
    assert summary["users_generated"] == summary["blocks_written"] > 0
    assert after.users == before.users and after.generated_dim() == DIM
    for user in dataset.user_ids[:40].tolist():
        old, new = before.sequence(user), after.sequence(user)
        assert (old is None) == (new is None)
        if old is not None and new is not None:
            assert old.item_ids == new.item_ids
        block = after.generated(user)
        if block is None:
            continue
        assert block.gbr_version == item_model.version and len(block) == 4
        expected, known = table.lookup(block.item_ids)
        assert known.all()
        np.testing.assert_allclose(block.vectors, expected, atol=1e-3)
        assert new is not None and not set(block.item_ids) & set(new.item_ids)


def test_beyond_slots_end_blocks_outside_the_main_department(
    item_model: GBRModel, tiny: tuple[Dataset, GroundTruth], table: ItemTable, tmp_path: Path
) -> None:
    dataset = tiny[0]
    publish_embedded(latest_sequences(dataset, 50), tmp_path / "users.npz")
    _embedded(item_model, dataset, table, tmp_path, config=replace(CONFIG, beyond_slots=2))
    groups, snapshot = item_groups(dataset.catalogue), UserSnapshot.load(tmp_path / "users.npz")
    row = {item: i for i, item in enumerate(dataset.catalogue.item_ids.tolist())}
    sequences = behaviour_sequences(dataset.behaviours, len(dataset.user_ids))
    users = np.unique(dataset.behaviours.user_idx)[:20].tolist()
    blocks = [snapshot.generated(str(dataset.user_ids[u])) for u in users]
    main = [np.bincount(groups[sequences.of(u)]).argmax() for u in users]
    assert all(
        block is not None and all(groups[row[i]] != top for i in block.item_ids[-2:])
        for block, top in zip(blocks, main, strict=True)
    )


def test_blended_blocks_reach_the_store_as_generated(
    item_model: GBRModel, tiny: tuple[Dataset, GroundTruth], table: ItemTable, tmp_path: Path
) -> None:
    dataset = tiny[0]
    publish_embedded(latest_sequences(dataset, 50), tmp_path / "users.npz")
    blend = replace(CONFIG, log_weight=0.5)
    _embedded(item_model, dataset, table, tmp_path, config=blend)
    snapshot = UserSnapshot.load(tmp_path / "users.npz")
    sequences = behaviour_sequences(dataset.behaviours, len(dataset.user_ids))
    users = np.unique(dataset.behaviours.user_idx)[:20]
    expected = blended_blocks(item_model, sequences, users, sequences.lengths()[users], blend)
    ids = dataset.catalogue.item_ids
    for user, items in zip(users.tolist(), expected.item_idx, strict=True):
        block = snapshot.generated(str(dataset.user_ids[user]))
        assert block is not None and block.item_ids == ids[items].tolist()
    # The generator alone would have written other blocks: the weight reached the job.
    alone = generate_for_users(item_model, sequences, users, CONFIG)
    assert not np.array_equal(alone.item_idx, expected.item_idx)


def test_redis_blocks_follow_the_key_layout_with_ttl(
    item_model: GBRModel, tiny: tuple[Dataset, GroundTruth], table: ItemTable, tmp_path: Path,
    redis_url: str,
) -> None:  # fmt: skip
    dataset = tiny[0]
    summary = run_nearline(
        item_model, dataset, CONFIG, item_table=table, state_path=tmp_path / "state.npz",
        incremental=False, store=RedisStoreConfig(url=redis_url), ttl_s=3600,
    )  # fmt: skip
    client = redis.Redis.from_url(redis_url)
    user = dataset.user_ids[int(dataset.behaviours.user_idx[0])]
    key = keys.generated_behaviours_key(str(user))
    fields = client.hgetall(key)
    assert 0 < client.ttl(key) <= 3600
    assert fields[keys.GEN_VERSION.encode()].decode() == item_model.version
    item_ids = keys.decode_item_ids(fields[keys.GEN_ITEMS.encode()])
    vectors = keys.decode_vectors(fields[keys.GEN_VECTORS.encode()], DIM)
    assert len(item_ids) == 4 == len(vectors)
    np.testing.assert_allclose(vectors, table.lookup(item_ids)[0], atol=1e-3)
    assert len(client.keys(keys.generated_behaviours_key("*"))) == summary["blocks_written"]
    client.close()


def test_incremental_regenerates_only_userswith_new_events(
    item_model: GBRModel, tiny: tuple[Dataset, GroundTruth], table: ItemTable, tmp_path: Path
) -> None:
    dataset = tiny[0]
    publish_embedded(latest_sequences(dataset, 50), tmp_path / "users.npz")
    first = _embedded(item_model, dataset, table, tmp_path, incremental=True)
    assert first["users_generated"] > 2
    assert _embedded(item_model, dataset, table, tmp_path, incremental=True)["users_generated"] == 0
    blocks_before = UserSnapshot.load(tmp_path / "users.npz")
    active = np.unique(dataset.behaviours.user_idx)[:2].astype(np.int64)
    later = with_new_events(dataset, active)
    again = _embedded(item_model, later, table, tmp_path, incremental=True)
    assert again["users_generated"] == 2
    state = GenerationState.load(tmp_path / "state.npz")
    assert state is not None and state.gbr_version == item_model.version
    snapshot = UserSnapshot.load(tmp_path / "users.npz")
    quiet = [u for u in np.unique(dataset.behaviours.user_idx).tolist() if u not in active][:10]
    for user in dataset.user_ids[quiet].tolist():  # untouched users keep their blocks
        old, new = blocks_before.generated(user), snapshot.generated(user)
        assert old is not None and new is not None and old.item_ids == new.item_ids
