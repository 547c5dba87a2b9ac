"""Blocks for the ranker's training examples come from each example's past only."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from offline.data.canonical import Behaviours, Dataset
from offline.data.synthetic import GroundTruth
from offline.gbr.checkpoint import GBRModel
from offline.gbr.examples import UserFolds, checkpoint_lengths, generated_blocks_for_examples
from offline.gbr.generate import GenerationConfig, generate_for_prefixes
from offline.gbr.sequences import behaviour_sequences

CONFIG = GenerationConfig(k=4, steps=2, temperature=1.0, top_p=0.9, seed=1)


def _requests(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    imp = dataset.impressions
    first = np.unique(imp.request_ids, return_index=True)[1]
    return imp.user_idx[first].astype(np.int64), imp.ts[first].astype(np.int64)


def _with_future_items_changed(dataset: Dataset, cutoff: int) -> Dataset:
    """Every event at or after ``cutoff`` points at another item; counts and times unchanged."""
    beh = dataset.behaviours
    future = beh.ts >= cutoff
    rng = np.random.default_rng(0)
    items = beh.item_idx.copy()
    items[future] = rng.integers(0, len(dataset.catalogue), int(future.sum())).astype(np.int32)
    changed = Behaviours(user_idx=beh.user_idx, item_idx=items, ts=beh.ts, event=beh.event)
    return replace(dataset, behaviours=changed)


@pytest.mark.parametrize("log_weight", [0.0, 0.5])
def test_blocks_ignore_events_at_or_after_the_request(
    item_model: GBRModel, tiny: tuple[Dataset, GroundTruth], log_weight: float
) -> None:
    """Unmasked or blended with co-occurrence (its statistics the checkpoint's, from before
    the split), a block reads nothing at or after its request."""
    dataset = tiny[0]
    users, ts = _requests(dataset)
    cutoff = int(np.median(ts))
    config = replace(CONFIG, log_weight=log_weight)
    before, _ = generated_blocks_for_examples(item_model, dataset, users, ts, 4, generation=config)
    perturbed = _with_future_items_changed(dataset, cutoff)
    after, _ = generated_blocks_for_examples(item_model, perturbed, users, ts, 4, generation=config)
    past = ts <= cutoff
    assert (before[past] >= 0).any()
    np.testing.assert_array_equal(before[past], after[past])
    assert (before[~past] != after[~past]).any()  # the perturbation did reach later requests


def test_blocks_match_generation_from_the_prior_prefix(
    item_model: GBRModel, tiny: tuple[Dataset, GroundTruth]
) -> None:
    dataset = tiny[0]
    users, ts = _requests(dataset)
    items, confidence = generated_blocks_for_examples(
        item_model, dataset, users, ts, 4, generation=CONFIG, stride=4
    )
    assert items.shape == confidence.shape == (len(users), 4)
    sequences = behaviour_sequences(dataset.behaviours, len(dataset.user_ids))
    prior = sequences.length_before(users, ts)
    lengths = checkpoint_lengths(prior, 4)
    assert (lengths <= prior).all()
    assert (items[lengths == 0] == -1).all()
    rows = np.flatnonzero(lengths > 0)[:25]
    direct = generate_for_prefixes(item_model, sequences, users[rows], lengths[rows], CONFIG)
    np.testing.assert_array_equal(items[rows], direct.item_idx)
    for row in rows.tolist():  # never an item the user engaged with before the request
        history = set(sequences.of(int(users[row]))[: prior[row]].tolist())
        assert not history & set(items[row].tolist())


def test_cross_fitted_folds_route_users_to_the_other_fold(
    item_model: GBRModel, semantic_model: GBRModel, tiny: tuple[Dataset, GroundTruth]
) -> None:
    dataset = tiny[0]
    users, ts = _requests(dataset)
    folds = UserFolds(
        models=[item_model, semantic_model],
        fold_of_user=np.arange(len(dataset.user_ids), dtype=np.int64) % 2,
    )
    items, _ = generated_blocks_for_examples(folds, dataset, users, ts, 4, generation=CONFIG)
    alone, _ = generated_blocks_for_examples(item_model, dataset, users, ts, 4, generation=CONFIG)
    even = users % 2 == 0
    np.testing.assert_array_equal(items[even], alone[even])
