"""The pieces the Ray pipelines stand on, without a cluster: shard rows, the generation plan,
a shard's sequences, the pace of LLM calls."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from offline.data.canonical import Dataset
from offline.data.synthetic import GroundTruth
from offline.gbr.generate import window_widths
from offline.gbr.sequences import behaviour_sequences
from offline.scale.catalogue_shards import catalogue_rows, shard_catalogue
from offline.scale.generate import ShardSequences, generation_plan
from offline.scale.llm_pool import RequestPace
from offline.scale.session import RayOptions, RayUnavailable, WorkerPool, ray_session
from offline.scale.shards import jagged_take, ranges, shard_arrays, shard_row


def test_a_shard_row_gives_back_its_arrays() -> None:
    arrays = {
        "ids": np.asarray(["i1", "", "i:3"]),
        "vectors": np.arange(6, dtype=np.float16),
        "events": np.asarray([1, 2, 3], np.uint8),
        "none": np.zeros(0, np.int64),
    }
    row = shard_row(arrays, {"start": 7, "dim": 2})
    found = shard_arrays(row, 0)
    assert found["start"] == 7 and found["dim"] == 2
    for name, values in arrays.items():
        np.testing.assert_array_equal(found[name], values)
        assert found[name].dtype.kind == values.dtype.kind


def test_catalogue_shards_cover_the_catalogue(tiny: tuple[Dataset, GroundTruth]) -> None:
    catalogue = tiny[0].catalogue
    shards = [shard_arrays(row, 0) for row in catalogue_rows(catalogue, 64)]
    assert [s["start"] for s in shards] == [start for start, _ in ranges(len(catalogue), 64)]
    back = [shard_catalogue(s) for s in shards]
    for name in ("item_ids", "titles", "prices", "price_bands", "launch_ts", "keywords"):
        joined = np.concatenate([getattr(part, name) for part in back])
        np.testing.assert_array_equal(joined, getattr(catalogue, name))
        assert joined.dtype == getattr(catalogue, name).dtype or joined.dtype.kind == "U"


def test_jagged_take_gathers_rows_in_order() -> None:
    offsets = np.asarray([0, 2, 2, 5, 6], np.int64)
    values = np.asarray([10, 11, 30, 31, 32, 40])
    taken, index = jagged_take(offsets, np.asarray([3, 0, 1, 2]))
    np.testing.assert_array_equal(taken, [0, 1, 3, 3, 6])
    np.testing.assert_array_equal(values[index], [40, 10, 11, 30, 31, 32])


def test_shards_are_whole_batches_of_one_width() -> None:
    lengths = np.random.default_rng(0).integers(0, 40, 300)
    batch, window = 8, 24
    plan = generation_plan(lengths, window, batch, shard_users=20)  # 2 batches a shard
    widths = window_widths(lengths, window)
    groups = [np.flatnonzero(widths == w) for w in np.unique(widths).tolist()]
    np.testing.assert_array_equal(plan.order, np.concatenate(groups))
    assert plan.bounds[0][0] == 0 and plan.bounds[-1][1] == len(lengths)
    group_start = {int(w): int(np.flatnonzero(widths[plan.order] == w)[0]) for w in widths}
    for start, stop in plan.bounds:
        shard_widths = np.unique(widths[plan.order[start:stop]])
        assert len(shard_widths) == 1 and stop - start <= 16
        assert (start - group_start[int(shard_widths[0])]) % batch == 0


def test_a_shard_reads_its_users_by_their_dataset_index(
    tiny: tuple[Dataset, GroundTruth],
) -> None:
    dataset = tiny[0]
    full = behaviour_sequences(dataset.behaviours, len(dataset.user_ids))
    users = np.flatnonzero(full.lengths() > 0)[[7, 2, 30, 11]]
    offsets, index = jagged_take(full.offsets, users)
    shard = ShardSequences(offsets=offsets, items=full.items[index], ts=full.ts[index], users=users)
    lengths = full.lengths()[users]
    picked = users[[2, 0]]
    np.testing.assert_array_equal(
        shard.windows(picked, lengths[[2, 0]], 8), full.windows(picked, lengths[[2, 0]], 8)
    )
    np.testing.assert_array_equal(shard.histories(users, lengths), full.histories(users, lengths))
    with pytest.raises(KeyError):
        shard.windows(np.asarray([int(users.max()) + 1]), np.asarray([1]), 4)


def test_calls_keep_to_their_pace() -> None:
    pace = RequestPace(per_s=50.0)

    async def five() -> float:
        started = time.monotonic()
        await asyncio.gather(*(pace.wait() for _ in range(5)))
        return time.monotonic() - started

    assert asyncio.run(five()) >= 4 / 50 - 1e-3
    assert RequestPace(None).interval == 0
    with pytest.raises(ValueError):
        RequestPace(0)


def test_a_cluster_nobody_listens_at_is_one_clear_error() -> None:
    with (
        pytest.raises(RayUnavailable, match="cannot reach"),
        ray_session(RayOptions("127.0.0.1:1")),
    ):
        pass


def test_a_pool_starts_no_more_workers_than_shards() -> None:
    assert WorkerPool(workers=4).size() == 4 and WorkerPool(workers=4).size(shards=2) == 2
    with pytest.raises(ValueError):
        WorkerPool(shard_rows=0)
