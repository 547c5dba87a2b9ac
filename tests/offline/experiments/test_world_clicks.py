"""The world's public click model, which the simulated experiments' shoppers use, is the one the
synthetic log's clicks were drawn from."""

from __future__ import annotations

import numpy as np
import pytest

from offline.data.synthetic import ClickModel, SyntheticConfig, examination, generate_with_truth
from offline.data.synthetic.generate import stage_seeds


def test_click_probability_reproduces_the_logged_clicks() -> None:
    config = SyntheticConfig.preset("tiny")
    dataset, truth = generate_with_truth(config)
    world = ClickModel.of(config, truth)
    impressions = dataset.impressions
    k = config.impressions_per_request
    chance = world.probability(
        impressions.user_idx.astype(np.int64), impressions.item_idx.astype(np.int64)
    ).reshape(-1, k)
    # The generator's own draw of the clicks (stream 5), against these probabilities.
    draws = np.random.default_rng(stage_seeds(config)[5]).random(chance.shape)
    np.testing.assert_array_equal(draws < chance, impressions.clicked.reshape(-1, k) > 0)
    assert abs(chance.mean() - config.target_ctr) < 0.005


def test_pages_are_examined_top_first() -> None:
    assert examination([0, 1, 2]).tolist() == pytest.approx([1.0, 1 / np.log2(3), 0.5])
    config = SyntheticConfig.preset("tiny")
    _, truth = generate_with_truth(config)
    world = ClickModel.of(config, truth)
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(50), 40)
    pages = world.candidates(users, np.full(len(users), 1_764_000_000), 10, rng)
    assert all(len(set(page)) == 10 for page in pages)
    clicks = world.clicks(users, pages, rng)
    assert clicks[:, 0].mean() > clicks[:, 9].mean()
    # The affinity an oracle sorts by is the one the click probability rises with.
    affinity = world.affinity(users[:, None], pages)
    chance = world.probability(users[:, None], pages)
    assert np.corrcoef(affinity.ravel(), chance.ravel())[0, 1] > 0.5
