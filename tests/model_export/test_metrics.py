"""The metric functions agree with scikit-learn, ties and degenerate groups included."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from model_export.evaluate import auc, gauc, logloss


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=500)
    scores = np.round(rng.random(500) + 0.3 * labels, 1)  # coarse scores: many ties
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_gauc_is_impression_weighted_mean_of_user_aucs() -> None:
    rng = np.random.default_rng(7)
    users = rng.integers(0, 30, size=800)
    labels = rng.integers(0, 2, size=800)
    labels[users == 3] = 1  # one class only: left out
    scores = rng.random(800) + 0.2 * labels
    total, weight = 0.0, 0
    for user in np.unique(users):
        rows = users == user
        if len(np.unique(labels[rows])) == 2:
            total += roc_auc_score(labels[rows], scores[rows]) * rows.sum()
            weight += rows.sum()
    assert gauc(labels, scores, users) == pytest.approx(total / weight, abs=1e-12)


def test_logloss_matches_sklearn() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, size=300)
    probabilities = rng.uniform(0.01, 0.99, size=300)
    assert logloss(labels, probabilities) == pytest.approx(log_loss(labels, probabilities))


def test_degenerate_inputs_are_neutral() -> None:
    assert auc([1, 1, 1], [0.1, 0.2, 0.3]) == 0.5
    assert gauc([0, 1], [0.1, 0.2], [0, 1]) == 0.5
    assert auc([], []) == 0.5
    assert np.isfinite(logloss([1, 0], [1.0, 0.0]))
