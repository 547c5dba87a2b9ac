"""The pipelines on a local Ray give what the single-process path gives: the same knowledge
records, vectors, generated blocks and Redis keys and values; the nearline job regenerates only
the users with new events; ``reaseq scale nearline`` runs end to end."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from offline.data.canonical import Dataset
from offline.data.synthetic import GroundTruth
from offline.encode import TfidfSvdEncoder, encode_records
from offline.gbr.checkpoint import GBRModel
from offline.gbr.generate import GenerationConfig
from offline.gbr.nearline import GenerationState, generate_users, latest_event_ts, run_nearline
from offline.knowledge import OfflineKnowledgeBackend
from offline.knowledge.runner import (
    BackendKind,
    KnowledgeRunReport,
    describe_catalogue,
    read_records,
)
from offline.knowledge.schema import ItemKnowledge
from offline.publish.sequences import latest_sequences
from offline.publish.stores import publish_embedded, publish_redis
from offline.scale.encode import encode_records_ray
from offline.scale.generate import generate_users_ray
from offline.scale.knowledge import describe_lines_ray
from offline.scale.nearline import ray_block_writer
from offline.scale.publish import ray_writes
from offline.scale.session import WorkerPool
from service.bundles.loaded import ItemTable, load_item_table
from service.contracts import keys
from service.contracts.manifest import read_manifest
from service.stores.base import UserSequence
from service.stores.config import EmbeddedStoreConfig, RedisStoreConfig
from service.stores.redis_writer import RedisWriter
from service.stores.snapshot import UserSnapshot
from tests.offline.llm_server import ServerScript
from tests.offline.scale.redis_contents import flush, redis_dump
from tests.offline.test_llm_agents import catalogue, settings
from tests.support.gbr import with_new_events

pytestmark = pytest.mark.usefixtures("local_ray")

#: Small shards, so that every stage cuts the tiny dataset into several.
POOL = WorkerPool(workers=2, shard_rows=48)
CONFIG = GenerationConfig(k=4, steps=2, batch_size=16)


def _table(bundle_dir: Path) -> ItemTable:
    return load_item_table(bundle_dir, read_manifest(bundle_dir))


def describe_catalogue_ray(
    *args: Any, **kwargs: Any
) -> tuple[list[ItemKnowledge], KnowledgeRunReport]:
    """The Ray path's JSON lines, parsed: the records compared with the single process's."""
    lines, report = describe_lines_ray(*args, **kwargs)
    return [ItemKnowledge.model_validate_json(line) for line in lines], report


def test_offline_knowledge_is_the_single_process_records(
    tiny: tuple[Dataset, GroundTruth],
) -> None:
    reference, _ = describe_catalogue(tiny[0].catalogue)
    records, report = describe_catalogue_ray(tiny[0].catalogue, pool=POOL)
    assert records == reference
    assert report.items == len(reference) and report.backend == "offline-tables@2"


def test_llm_knowledge_is_the_single_process_records_and_reruns_from_the_cache(
    script: ServerScript, url: str, tmp_path: Path
) -> None:
    items = catalogue(["ok", "fenced", "contradict", "ok"], brand="Acme")
    reference, _ = describe_catalogue(items, BackendKind.llm, tmp_path / "a.sqlite", settings(url))
    asked = len(script.seen)
    pool = WorkerPool(workers=2, shard_rows=2)
    cache, chat = tmp_path / "b.sqlite", settings(url)
    records, report = describe_catalogue_ray(
        items, BackendKind.llm, cache, chat, pool=pool, requests_per_s=200.0
    )
    assert records == reference and report.fallbacks == {}
    assert report.llm_successes == report.agent_calls > 0 and len(script.seen) > asked
    asked = len(script.seen)
    again, report = describe_catalogue_ray(items, BackendKind.llm, cache, chat, pool=pool)
    assert again == reference and len(script.seen) == asked
    assert report.items_from_cache == len(items) and report.agent_calls == 0


def test_vectors_are_the_single_process_vectors(tiny: tuple[Dataset, GroundTruth]) -> None:
    records = OfflineKnowledgeBackend().describe(tiny[0].catalogue)
    reference, info = encode_records(records, TfidfSvdEncoder(dim=16))
    vectors, found = encode_records_ray(records, TfidfSvdEncoder(dim=16), POOL)
    np.testing.assert_array_equal(vectors, reference)
    assert found == info


@pytest.mark.parametrize(
    "config",
    [CONFIG, replace(CONFIG, temperature=1.0, top_p=0.9, seed=3, beyond_slots=2)],
    ids=["greedy", "sampled-beyond"],
)
def test_blocks_are_the_single_process_blocks(
    item_model: GBRModel,
    tiny: tuple[Dataset, GroundTruth],
    bundle_dir: Path,
    config: GenerationConfig,
) -> None:
    dataset, table = tiny[0], _table(bundle_dir)
    users = np.unique(dataset.behaviours.user_idx).astype(np.int64)[::-1]  # any order
    reference = generate_users(item_model, dataset, users, config, table)
    found = generate_users_ray(item_model, dataset, users, config, table, pool=POOL)
    np.testing.assert_array_equal(found.user_ids, reference.user_ids)
    np.testing.assert_array_equal(found.item_idx, reference.item_idx)
    assert found.item_ids == reference.item_ids and found.gbr_version == reference.gbr_version
    np.testing.assert_array_equal(found.vectors, reference.vectors)
    if config.beyond_slots:  # filled in the shard's batches: the same items, float-level ties
        np.testing.assert_allclose(found.confidence, reference.confidence, rtol=1e-5)
    else:  # the very same batches
        np.testing.assert_array_equal(found.confidence, reference.confidence)


def _live_sequence(url: str) -> None:
    """User u0 already in Redis with a live sequence (appended online), its vectors' copy under
    an older version than the active one (so that copy expires)."""
    writer = RedisWriter.from_url(url)
    sequence = UserSequence(["i5", "i7"], np.asarray([1, 2], np.uint8), np.asarray([10, 20]))
    writer.write_user_sequences("older", [("u0", sequence, np.ones((2, 8), np.float32))])
    writer.set_active_bundle("old")
    writer.close()


def test_publish_writes_the_single_process_keys_and_values(
    tiny: tuple[Dataset, GroundTruth], bundle_dir: Path, redis_url: str
) -> None:
    sequences = latest_sequences(tiny[0], 6)
    store = RedisStoreConfig(url=redis_url)
    _live_sequence(redis_url)
    reference_counts = publish_redis(sequences, bundle_dir, store, gc_grace_s=600)
    reference = redis_dump(redis_url)
    flush(redis_url)
    _live_sequence(redis_url)
    counts = publish_redis(
        sequences, bundle_dir, store, gc_grace_s=600, writes=ray_writes(store, POOL)
    )
    assert counts == reference_counts and counts["expiring_keys"] > 0
    assert counts["kept_live_sequences"] == 1
    assert redis_dump(redis_url) == reference
    assert reference[keys.ACTIVE_BUNDLE.encode()] == (b"scale-1", False)


def test_incremental_nearline_regenerates_only_users_with_new_events(
    item_model: GBRModel, tiny: tuple[Dataset, GroundTruth], bundle_dir: Path, tmp_path: Path
) -> None:
    dataset, table = tiny[0], _table(bundle_dir)
    for name in ("reference", "ray"):
        publish_embedded(latest_sequences(dataset, 6), tmp_path / f"{name}.npz")
    run_nearline(
        item_model, dataset, CONFIG, item_table=table, incremental=True,
        state_path=tmp_path / "reference_state.npz",
        store=EmbeddedStoreConfig(users_path=tmp_path / "reference.npz"),
    )  # fmt: skip

    def on_ray(data: Dataset) -> dict[str, object]:
        store = EmbeddedStoreConfig(users_path=tmp_path / "ray.npz")
        return run_nearline(
            item_model, data, CONFIG, item_table=table, incremental=True,
            state_path=tmp_path / "ray_state.npz", store=store,
            write_blocks=ray_block_writer(item_model, data, CONFIG, table, store, pool=POOL),
        )  # fmt: skip

    first = on_ray(dataset)
    reference, found = (UserSnapshot.load(tmp_path / f"{n}.npz") for n in ("reference", "ray"))
    active = np.unique(dataset.behaviours.user_idx)
    assert first["users_generated"] == first["blocks_written"] == len(active)
    for user in dataset.user_ids[active].tolist():
        old, new = reference.generated(user), found.generated(user)
        assert old is not None and new is not None and old.item_ids == new.item_ids
    assert on_ray(dataset)["users_generated"] == 0
    touched = active[:2].astype(np.int64)
    again = on_ray(with_new_events(dataset, touched))
    assert again["users_generated"] == 2
    state = GenerationState.load(tmp_path / "ray_state.npz")
    assert state is not None and state.gbr_version == item_model.version
    after = UserSnapshot.load(tmp_path / "ray.npz")
    for user in dataset.user_ids[active[2:12]].tolist():  # untouched users keep their blocks
        old, new = found.generated(user), after.generated(user)
        assert old is not None and new is not None and old.item_ids == new.item_ids


def test_the_nearline_command_writes_the_single_process_blocks(
    item_model: GBRModel,
    tiny: tuple[Dataset, GroundTruth],
    bundle_dir: Path,
    tmp_path: Path,
    redis_url: str,
) -> None:
    dataset = tiny[0]
    dataset.save(tmp_path / "data")
    item_model.save(tmp_path / "gbr")
    run_nearline(
        item_model, dataset, CONFIG, item_table=_table(bundle_dir), incremental=False,
        state_path=tmp_path / "reference_state.npz", store=RedisStoreConfig(url=redis_url),
    )  # fmt: skip
    reference = redis_dump(redis_url, skip_fields=(keys.GEN_CREATED_AT.encode(),))
    flush(redis_url)
    command = [
        "scale", "nearline", "--data", str(tmp_path / "data"),
        "--checkpoint", str(tmp_path / "gbr"), "--bundles", str(bundle_dir.parent),
        "--version", bundle_dir.name, "--store", "redis", "--redis-url", redis_url,
        "--users-path", str(tmp_path / "users.npz"), "--state", str(tmp_path / "state.npz"),
        "--no-incremental", "--num-cpus", "2", "--shard-users", "48", "--gpus-per-worker", "0",
        "--k", "4", "--steps", "2", "--temperature", "0", "--top-p", "0.9", "--seed", "0",
        "--batch-size", "16", "--beyond-slots", "0",
    ]  # fmt: skip
    ran = CliRunner().invoke(app, command)
    assert ran.exit_code == 0, ran.output
    summary = json.loads(ran.stdout[ran.stdout.index("{") :])
    assert summary["store"] == "redis" and summary["blocks_written"] == summary["users_generated"]
    assert redis_dump(redis_url, skip_fields=(keys.GEN_CREATED_AT.encode(),)) == reference
    assert (tmp_path / "state.npz").is_file()

    # --out: every active user's blocks into a file, as the single process generates them.
    ran = CliRunner().invoke(app, [*command, "--out", str(tmp_path / "blocks.npz")])
    assert ran.exit_code == 0, ran.output
    users = np.flatnonzero(latest_event_ts(dataset) >= 0)
    expected = generate_users(item_model, dataset, users, CONFIG, _table(bundle_dir))
    with np.load(tmp_path / "blocks.npz") as found:
        np.testing.assert_array_equal(found["user_ids"], expected.user_ids)
        np.testing.assert_array_equal(found["item_idx"], expected.item_idx)
        np.testing.assert_allclose(found["confidence"], expected.confidence, rtol=1e-5)
        assert str(found["gbr_version"]) == item_model.version
    refused = CliRunner().invoke(app, [*command, "--out", "x.npz", "--incremental"])
    assert refused.exit_code == 2 and "--out" in refused.output


def test_the_knowledge_and_encode_commands_write_the_single_process_files(
    tiny: tuple[Dataset, GroundTruth], tmp_path: Path
) -> None:
    tiny[0].save(tmp_path / "data")
    runner, data = CliRunner(), ["--data", str(tmp_path / "data")]
    for prefix, name in ((["scale"], "ray"), ([], "reference")):
        records, vectors = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.npz"
        described = runner.invoke(
            app,
            [*prefix, "knowledge", *data, "--out", str(records), "--cache", str(tmp_path / "c")]
            + (["--shard-items", "64", "--num-cpus", "2"] if prefix else ["--no-progress"]),
        )
        assert described.exit_code == 0, described.output
        encoded = runner.invoke(
            app,
            [*prefix, "encode", "--records", str(records), "--dim", "16", "--out", str(vectors)]
            + (["--shard-texts", "64"] if prefix else []),
        )
        assert encoded.exit_code == 0, encoded.output
    # The same records; the fast path lists a record's confidences in another order.
    assert read_records(tmp_path / "ray.jsonl") == read_records(tmp_path / "reference.jsonl")
    with np.load(tmp_path / "ray.npz") as found, np.load(tmp_path / "reference.npz") as reference:
        for name in ("item_ids", "vectors", "encoder"):
            np.testing.assert_array_equal(found[name], reference[name])
