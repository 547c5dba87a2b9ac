"""Blocks blended with the co-occurrence of the generator's training logs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from offline.data.canonical import Dataset
from offline.data.synthetic import GroundTruth
from offline.gbr import baselines
from offline.gbr.beyond import generate_blocks, item_groups
from offline.gbr.checkpoint import GBRModel
from offline.gbr.complements import slot_probabilities
from offline.gbr.evaluate import user_recall
from offline.gbr.fusion import blended_blocks, blended_scores
from offline.gbr.generate import GenerationConfig
from offline.gbr.log_prior import LogPrior
from offline.gbr.rolling import choose_blend, per_user_mean, rolling_points
from offline.gbr.sequences import behaviour_sequences


def _points(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Every user with history, at two history lengths (whole, and half of it)."""
    whole = behaviour_sequences(dataset.behaviours, len(dataset.user_ids))
    users = np.flatnonzero(whole.lengths() >= 4)[:30]
    lengths = whole.lengths()[users]
    return np.concatenate([users, users]), np.concatenate([lengths, lengths // 2])


def test_the_prior_is_the_training_logs_and_scores_cosine_cooccurrence(
    tiny: tuple[Dataset, GroundTruth], item_model: GBRModel
) -> None:
    dataset, _ = tiny
    prior = item_model.log_prior
    assert prior is not None
    fit = behaviour_sequences(dataset.behaviours, len(dataset.user_ids), dataset.split_ts)
    # The rows are the users' distinct items before the split: nothing later, no one missing.
    assert len(prior.items) == len(fit.items) and np.array_equal(prior.items, fit.items)
    assert np.array_equal(prior.item_users, item_model.item_counts)
    # Brute force: users engaging both items over the root of each item's users, summed over
    # the history (the popularity tiebreak below 1e-6).
    n = item_model.n_items
    engaged = np.zeros((fit.n_users, n))
    for user in range(fit.n_users):
        engaged[user, fit.of(user)] = 1.0
    counts = engaged.sum(axis=0)
    cosine = engaged.T @ engaged / np.sqrt(np.outer(np.maximum(counts, 1), np.maximum(counts, 1)))
    users, lengths = _points(dataset)
    whole = behaviour_sequences(dataset.behaviours, len(dataset.user_ids))
    histories = whole.histories(users, lengths)
    expected = np.stack([cosine[row[row >= 0]].sum(axis=0) for row in histories])
    assert np.allclose(prior.scores(histories), expected, atol=2e-6)
    # A fold's prior keeps its users' rows only.
    chosen = np.array([0, 3, 5])
    part = LogPrior.of(fit, n, chosen)
    assert np.array_equal(part.items, np.concatenate([fit.of(int(u)) for u in chosen]))


def test_blocks_blend_the_generator_with_cooccurrence(
    tiny: tuple[Dataset, GroundTruth], item_model: GBRModel
) -> None:
    dataset, _ = tiny
    whole = behaviour_sequences(dataset.behaviours, len(dataset.user_ids))
    fit = behaviour_sequences(dataset.behaviours, len(dataset.user_ids), dataset.split_ts)
    users, lengths = _points(dataset)
    k, n = 8, item_model.n_items
    config = GenerationConfig(k=k, batch_size=7)
    histories = whole.histories(users, lengths)
    windows = whole.windows(users, lengths, item_model.config.window_items - k)
    probabilities = slot_probabilities(item_model, windows, k)
    # Weight 1 is the co-occurrence baseline of the training logs (the same scores; items
    # tied on them may come in another order); the blocks are full, best first, and never
    # repeat an item nor hold a history item.
    logs = item_model.log_prior
    assert logs is not None
    cooccurrence = logs.scores(histories)
    only_logs = blended_blocks(item_model, whole, users, lengths, replace(config, log_weight=1.0))
    baseline = baselines.cooccurrence(whole, users, k, n, lengths, fit)
    assert np.allclose(
        np.take_along_axis(cooccurrence, only_logs.item_idx, axis=1),
        np.take_along_axis(cooccurrence, baseline, axis=1),
    )
    for weight in (0.3, 0.7):
        blend = replace(config, log_weight=weight)
        block = blended_blocks(item_model, whole, users, lengths, blend)
        assert (block.item_idx >= 0).all()
        score = blended_scores(probabilities, cooccurrence, weight)
        for row, items in enumerate(block.item_idx):
            history = set(histories[row][histories[row] >= 0].tolist())
            assert len(set(items.tolist())) == k and not history & set(items.tolist())
            others = np.setdiff1d(np.arange(n), [*history, *items.tolist()])
            assert np.all(np.diff(score[row, items]) <= 0)
            assert score[row, items].min() >= score[row, others].max()
            assert np.allclose(block.confidence[row], probabilities[row, items])
        # The nearline entry point routes a positive weight here.
        routed = generate_blocks(item_model, whole, users, lengths, blend, None)
        assert np.array_equal(routed.item_idx, block.item_idx)
    # The blend moves the blocks away from both ends.
    assert not np.array_equal(block.item_idx, only_logs.item_idx)


def test_blending_survives_the_checkpoint_and_refuses_what_cannot_blend(
    tiny: tuple[Dataset, GroundTruth],
    item_model: GBRModel,
    semantic_model: GBRModel,
    tmp_path: Path,
) -> None:
    dataset, _ = tiny
    whole = behaviour_sequences(dataset.behaviours, len(dataset.user_ids))
    users, lengths = _points(dataset)
    config = GenerationConfig(k=8, log_weight=0.5)
    loaded = GBRModel.load(item_model.save(tmp_path / "gbr"))
    before = blended_blocks(item_model, whole, users, lengths, config)
    after = blended_blocks(loaded, whole, users, lengths, config)
    assert np.array_equal(before.item_idx, after.item_idx)
    assert np.allclose(before.confidence, after.confidence)
    with pytest.raises(ValueError, match="retrain it"):
        blended_blocks(replace(item_model, log_prior=None), whole, users, lengths, config)
    with pytest.raises(ValueError, match="item-token"):
        blended_blocks(semantic_model, whole, users, lengths, config)
    with pytest.raises(ValueError, match="log_weight"):
        GenerationConfig(log_weight=1.5)


def test_validation_chooses_the_pair_that_recalls_the_most(
    tiny: tuple[Dataset, GroundTruth], item_model: GBRModel
) -> None:
    dataset, _ = tiny
    beh = dataset.behaviours
    window = (float(dataset.split_ts), float(np.median(beh.ts[beh.ts >= dataset.split_ts])))
    groups = item_groups(dataset.catalogue)
    base = GenerationConfig(k=8)
    chosen, recall = choose_blend(item_model, dataset, base, groups, (0.0, 0.5), (0, 2), window)
    assert set(recall) == {"0/0", "0/2", "0.5/0", "0.5/2"}
    key = f"{chosen.log_weight:g}/{chosen.beyond_slots}"
    assert recall[key] == max(recall.values())
    # Each pair's figure is the rolled recall of the blocks generate_blocks writes for it.
    whole = behaviour_sequences(beh, len(dataset.user_ids))
    points = rolling_points(dataset, whole, window, 8)
    for weight, slots in ((0.0, 2), (0.5, 0)):
        config = replace(base, log_weight=weight, beyond_slots=slots)
        block = generate_blocks(item_model, whole, points.users, points.lengths, config, groups)
        per_user = per_user_mean(user_recall(block.item_idx, points.targets), points.users)
        assert recall[f"{weight:g}/{slots}"] == round(float(per_user.mean()), 4)
    with pytest.raises(ValueError, match="after the split"):
        choose_blend(item_model, dataset, base, groups, (0.0,), (0,), (0.0, None))
