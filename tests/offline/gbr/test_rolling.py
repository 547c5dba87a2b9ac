"""Beyond-log recall rolled through a period: a point at every new click, history growing."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from offline.data.canonical import Dataset
from offline.data.synthetic import GroundTruth
from offline.gbr import baselines
from offline.gbr.beyond import generate_blocks, item_groups
from offline.gbr.checkpoint import GBRModel
from offline.gbr.evaluate import user_recall
from offline.gbr.generate import GenerationConfig
from offline.gbr.rolling import per_user_mean, rolling_points, rolling_recall
from offline.gbr.sequences import BehaviourSequences, behaviour_sequences


def _first_engagement(dataset: Dataset) -> dict[tuple[int, int], int]:
    beh = dataset.behaviours
    first: dict[tuple[int, int], int] = {}
    events = zip(beh.user_idx.tolist(), beh.item_idx.tolist(), beh.ts.tolist(), strict=True)
    for user, item, ts in events:
        first[(user, item)] = min(ts, first.get((user, item), ts))
    return first


@pytest.mark.parametrize("late", [False, True])
def test_points_roll_through_the_window(tiny: tuple[Dataset, GroundTruth], late: bool) -> None:
    dataset, _ = tiny
    beh = dataset.behaviours
    whole = behaviour_sequences(beh, len(dataset.user_ids))
    start = float(dataset.split_ts)
    end = float(np.median(beh.ts[beh.ts >= start])) if late else None
    window = (start, end)
    horizon = 3
    points = rolling_points(dataset, whole, window, horizon)
    first = _first_engagement(dataset)
    events = zip(beh.user_idx.tolist(), beh.item_idx.tolist(), beh.ts.tolist(),
                 beh.event.tolist(), strict=True)  # fmt: skip
    clicked = {
        (u, i) for u, i, t, e in events if e == 1 and t >= start and (end is None or t < end)
    }
    # Brute force: each new click of the window (first engaged in it, by a click in it) whose
    # user engaged something before it is a target of the point with exactly that history.
    new = {(u, i) for (u, i) in clicked if first[(u, i)] >= start}
    expected = {}
    for user, item in new:
        before = {j for (v, j), t in first.items() if v == user and t < first[(user, item)]}
        if before:
            expected.setdefault((user, len(before)), set()).add(item)
    keys = list(zip(points.users.tolist(), points.lengths.tolist(), strict=True))
    assert len(keys) == len(set(keys)) == len(expected) > 0
    for key, goal in zip(keys, points.targets, strict=True):
        user, length = key
        history = set(whole.of(user)[:length].tolist())
        assert length >= 1 and 1 <= len(goal) <= horizon
        assert not goal & history and all((user, item) in new for item in goal)
        # History strictly before every target; the point's own clicks are among its targets.
        assert max(first[(user, j)] for j in history) < min(first[(user, i)] for i in goal)
        if len(expected[key]) <= horizon:
            assert expected[key] <= goal
        else:
            assert goal <= expected[key] and len(goal) == horizon


def test_per_user_mean_weighs_users_not_points() -> None:
    values = np.array([1.0, 0.0, 0.5, 1.0])
    users = np.array([3, 3, 7, 9])
    np.testing.assert_allclose(per_user_mean(values, users), [0.5, 0.5, 1.0])


def test_a_prefix_is_judged_with_the_statistics_of_the_fit() -> None:
    rng = np.random.default_rng(0)
    n_users, n_items = 60, 40
    lengths = rng.integers(1, 12, n_users)
    items = np.concatenate([rng.choice(n_items, n, replace=False) for n in lengths])
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    whole = BehaviourSequences(offsets, items.astype(np.int64), np.arange(len(items)))
    users = np.arange(n_users, dtype=np.int64)
    prefix = (lengths + 1) // 2
    # The same prefixes as sequences of their own, scored with the whole log's statistics.
    cut = np.concatenate([whole.of(u)[:n] for u, n in zip(users, prefix, strict=True)])
    cut_offsets = np.concatenate(([0], np.cumsum(prefix))).astype(np.int64)
    truncated = BehaviourSequences(cut_offsets, cut.astype(np.int64), np.arange(len(cut)))
    for method in (baselines.cooccurrence, baselines.popularity):
        got = method(whole, users, 8, n_items, prefix, whole)
        np.testing.assert_array_equal(got, method(truncated, users, 8, n_items, None, whole))
        # Only the prefix is excluded: items of the rest of the sequence can be proposed.
        for row, user in enumerate(users.tolist()):
            assert not set(got[row].tolist()) & set(whole.of(user)[: prefix[user]].tolist())
    with pytest.raises(ValueError, match="history length"):
        baselines.cooccurrence(whole, users, 8, n_items, lengths + 1)


def test_rolled_recall_is_that_of_the_blocks_at_each_point(
    tiny: tuple[Dataset, GroundTruth], item_model: GBRModel
) -> None:
    dataset, _ = tiny
    groups = item_groups(dataset.catalogue)
    config = GenerationConfig(k=8, beyond_slots=2)
    window = (float(dataset.split_ts), None)
    report = rolling_recall(item_model, dataset, config, groups, window)
    whole = behaviour_sequences(dataset.behaviours, len(dataset.user_ids))
    points = rolling_points(dataset, whole, window, 8)
    assert report["points"] == len(points) and report["users"] == len(set(points.users.tolist()))
    block = generate_blocks(item_model, whole, points.users, points.lengths, config, groups)
    recall = per_user_mean(user_recall(block.item_idx, points.targets), points.users)
    assert report["recall"]["gbr_world"] == round(float(recall.mean()), 4)
    for name in ("gbr_world", "gbr"):
        gap = report["versus_cooccurrence"][name]
        assert gap["users"] == report["users"] and gap["low"] <= gap["mean"] <= gap["high"]
    # Only a generator trained before the split, and only a window after it.
    with pytest.raises(ValueError, match="before the split"):
        rolling_recall(replace(item_model, until_ts=dataset.split_ts + 1), dataset, config,
                       groups, window)  # fmt: skip
    with pytest.raises(ValueError, match="after the split"):
        rolling_recall(item_model, dataset, config, groups, (dataset.split_ts - 1.0, None))
