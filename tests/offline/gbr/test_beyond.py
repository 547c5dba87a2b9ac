"""Beyond-log slots rank items by lift: the generator's probability over the item's prior."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from offline.data.canonical import Dataset
from offline.data.synthetic import GroundTruth
from offline.gbr.beyond import beyond_fill, item_groups, item_prior, main_group
from offline.gbr.checkpoint import GBRModel
from offline.gbr.complements import slot_probabilities
from offline.gbr.evaluate import (
    future_targets,
    paired_gap,
    recall_and_hits,
    user_recall,
)
from offline.gbr.generate import GeneratedItems
from offline.gbr.sequences import behaviour_sequences


def test_generator_counts_only_its_training_events(
    tiny: tuple[Dataset, GroundTruth], item_model: GBRModel, tmp_path
) -> None:
    dataset, _ = tiny
    before = dataset.behaviours.ts < dataset.split_ts
    history = behaviour_sequences(dataset.behaviours, len(dataset.user_ids), dataset.split_ts)
    assert item_model.item_counts is not None
    np.testing.assert_array_equal(
        item_model.item_counts, np.bincount(history.items, minlength=len(dataset.catalogue))
    )
    # Nothing at or after the cut-off is counted.
    assert item_model.item_counts.sum() <= before.sum()
    loaded = GBRModel.load(item_model.save(tmp_path / "gbr"))
    np.testing.assert_array_equal(loaded.item_counts, item_model.item_counts)


def test_beyond_slots_take_the_highest_lift(
    tiny: tuple[Dataset, GroundTruth], item_model: GBRModel
) -> None:
    dataset, _ = tiny
    groups = item_groups(dataset.catalogue)
    history = behaviour_sequences(dataset.behaviours, len(dataset.user_ids), dataset.split_ts)
    users = np.flatnonzero(history.lengths() >= 3)[:30]
    lengths = history.lengths()[users]
    k, slots = 8, 3
    empty = GeneratedItems(
        np.full((len(users), k), -1, np.int64), np.zeros((len(users), k), np.float32)
    )
    # A skewed prior: the items the generator finds likeliest are made very common, so their
    # lift falls and the slots must go elsewhere.
    width = item_model.config.window_items - k
    prob = slot_probabilities(item_model, history.windows(users, lengths, width), k)
    counts = np.ones(item_model.n_items, np.int64)
    counts[np.argsort(-prob.mean(axis=0))[:20]] = 10_000
    skewed = replace(item_model, item_counts=counts)
    filled = beyond_fill(skewed, history, users, lengths, empty, groups, slots=slots)
    lift = prob / item_prior(skewed)[None, :]
    main = main_group(history.histories(users, lengths), groups)
    for row, user in enumerate(users.tolist()):
        allowed = groups != main[row]
        allowed[history.of(user)] = False
        expected = np.flatnonzero(allowed)[np.argsort(-lift[row, allowed], kind="stable")[:slots]]
        chosen = filled.item_idx[row, k - slots :]
        assert set(chosen.tolist()) == set(expected.tolist())
        assert not set(chosen.tolist()) & set(np.argsort(-prob.mean(axis=0))[:20].tolist())
        # Confidence stays the generator's probability, not the lift.
        np.testing.assert_allclose(filled.confidence[row, k - slots :], prob[row, chosen],
                                   rtol=1e-5)  # fmt: skip
    # Without counts (an older checkpoint) the prior is flat: slots follow probability alone.
    flat = beyond_fill(replace(item_model, item_counts=None), history, users, lengths, empty,
                       groups, slots=slots)  # fmt: skip
    row_prob = np.where(groups[None, :] != main[:, None], prob, -1.0)
    for row, user in enumerate(users.tolist()):
        row_prob[row, history.of(user)] = -1.0
        top = set(np.argsort(-row_prob[row], kind="stable")[:slots].tolist())
        assert set(flat.item_idx[row, k - slots :].tolist()) == top
    # lift=False ranks by probability alone whatever the counts.
    unlifted = beyond_fill(skewed, history, users, lengths, empty, groups, slots=slots, lift=False)
    np.testing.assert_array_equal(unlifted.item_idx, flat.item_idx)


def test_future_targets_keep_to_the_window_given(tiny: tuple[Dataset, GroundTruth]) -> None:
    dataset, _ = tiny
    history = behaviour_sequences(dataset.behaviours, len(dataset.user_ids), dataset.split_ts)
    beh = dataset.behaviours
    after = beh.ts[beh.ts >= dataset.split_ts]
    middle = float(np.median(after))
    users_all, targets_all = future_targets(dataset, history)
    users_early, targets_early = future_targets(dataset, history, (dataset.split_ts, middle))
    users_late, targets_late = future_targets(dataset, history, (middle, None))
    # A window's targets are the clicks in it only; the two halves make up the whole.
    clicked_late = {
        (u, i)
        for u, i, t, e in zip(beh.user_idx, beh.item_idx, beh.ts, beh.event, strict=True)
        if t >= middle and e == 1
    }
    for user, goal in zip(users_late.tolist(), targets_late, strict=True):
        assert all((user, item) in clicked_late for item in goal)
    whole = dict(zip(users_all.tolist(), targets_all, strict=True))
    for users, targets in ((users_early, targets_early), (users_late, targets_late)):
        for user, goal in zip(users.tolist(), targets, strict=True):
            assert goal <= whole[user]
    assert len(users_early) < len(users_all) and len(users_late) < len(users_all)


def test_the_paired_gap_reads_its_noise_off_the_users() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(40)
    same = paired_gap(base, base)
    assert same == {"mean": 0.0, "low": 0.0, "high": 0.0, "users": 40}
    # A gap every user shows is beyond the noise; one a single user carries is not.
    assert paired_gap(base + 0.1, base)["low"] > 0
    lone = base.copy()
    lone[0] += 2.0
    gap = paired_gap(lone, base)
    assert gap["low"] <= 0 < gap["mean"] < gap["high"]
    assert paired_gap(np.zeros(0), np.zeros(0))["users"] == 0


def test_user_recall_is_the_share_of_each_users_targets() -> None:
    generated = np.array([[1, 2, -1], [3, 4, 5]])
    targets = [{1, 7}, {8}]
    assert user_recall(generated, targets).tolist() == [0.5, 0.0]
    assert recall_and_hits(generated, targets) == (0.25, 0.5)
