"""Offline evaluation on the test side of the time split: AUC, GAUC and logloss, with slices.

The metric functions live in :mod:`model_export.metrics` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from model_export.dataset import (
    GeneratedBlocksLog,
    RankingExamples,
    slot_scores,
    time_split,
)
from model_export.metrics import Floats, Ints, auc, gauc, logloss, metrics
from model_export.train import TrainedRanker
from offline.data.canonical import Dataset
from service.contracts.manifest import EvaluationMetrics

__all__ = ["auc", "gauc", "logloss", "metrics"]


#: Users with at most this many real behaviours before a request count as sparse.
SPARSE_USER_HISTORY = 5


@dataclass(frozen=True)
class Predictions:
    """One row per real impression of the evaluated requests."""

    users: Ints
    items: Ints
    labels: Floats
    probabilities: Floats
    history_lengths: Ints


def predict(trained: TrainedRanker, examples: RankingExamples, batch_size: int = 1024) -> Floats:
    """Click probabilities ``[R, C]`` for every candidate slot (padding slots included)."""
    return slot_scores(trained.model, examples, batch_size, torch.sigmoid)


def flatten(examples: RankingExamples, probabilities: Floats) -> Predictions:
    mask = examples.candidate_mask
    per_slot_users = np.broadcast_to(examples.user_idx[:, None], mask.shape)
    per_slot_history = np.broadcast_to(examples.sequence_mask.sum(axis=1)[:, None], mask.shape)
    return Predictions(
        users=per_slot_users[mask].astype(np.int64),
        items=examples.candidate_items[mask],
        labels=examples.labels[mask].astype(np.float64),
        probabilities=probabilities[mask],
        history_lengths=per_slot_history[mask].astype(np.int64),
    )


def eval_predictions(
    trained: TrainedRanker, dataset: Dataset, generated: GeneratedBlocksLog | None = None
) -> Predictions:
    """Predictions on the eval side; ``generated`` supplies each request's generated block.

    A ranker trained with blocks may be evaluated without them (the degraded serving case), and
    one trained without them ignores blocks (its generated values stay zero).
    """
    _, eval_examples = time_split(dataset, trained.config.max_seq_len, generated)
    return flatten(eval_examples, predict(trained, eval_examples))


def evaluate(
    trained: TrainedRanker, dataset: Dataset, generated: GeneratedBlocksLog | None = None
) -> EvaluationMetrics:
    """Metrics of ``trained`` on requests at or after ``dataset.split_ts``."""
    found = eval_predictions(trained, dataset, generated)
    return metrics(found.labels, found.probabilities, found.users)


def random_baseline(dataset: Dataset, max_seq_len: int, seed: int = 0) -> EvaluationMetrics:
    """Random ranking calibrated to the training click rate: the floor any model must beat.

    Scores are the training click rate with a small random jitter, so AUC and GAUC measure a
    random order while logloss is that of knowing only the base rate.
    """
    train_examples, eval_examples = time_split(dataset, max_seq_len)
    base_rate = float(train_examples.labels[train_examples.candidate_mask].mean())
    rng = np.random.default_rng(seed)
    found = flatten(eval_examples, np.zeros(eval_examples.labels.shape))
    jitter = rng.uniform(0.95, 1.05, size=len(found.labels))
    return metrics(found.labels, base_rate * jitter, found.users)


def slice_metrics(trained: TrainedRanker, found: Predictions) -> dict[str, EvaluationMetrics]:
    """Cold items and sparse users.

    * ``cold_items``: impressions of items held out of training entirely, i.e. without a trained
      ID embedding because they appear in no training impression or behaviour (on the synthetic
      data, the items launched after the split time).
    * ``sparse_users``: impressions of requests whose user had at most
      :data:`SPARSE_USER_HISTORY` real behaviours before the request (the sequence the ranker
      sees, capped at its maximum length).
    """
    has_id = trained.model.items.has_id.numpy() > 0
    slices = {
        "cold_items": ~has_id[found.items],
        "sparse_users": found.history_lengths <= SPARSE_USER_HISTORY,
    }
    return {
        name: metrics(found.labels[rows], found.probabilities[rows], found.users[rows])
        for name, rows in slices.items()
    }


def evaluate_slices(
    trained: TrainedRanker, dataset: Dataset, generated: GeneratedBlocksLog | None = None
) -> dict[str, EvaluationMetrics]:
    """Slice metrics on the eval side; see :func:`slice_metrics`."""
    return slice_metrics(trained, eval_predictions(trained, dataset, generated))


def evaluate_with_slices(
    trained: TrainedRanker,
    dataset: Dataset,
    name: str,
    generated: GeneratedBlocksLog | None = None,
    extra_slices: Callable[[Predictions], dict[str, npt.NDArray[np.bool_]]] | None = None,
) -> dict[str, EvaluationMetrics]:
    """``{name: overall, f"{name}/<slice>": ...}`` from one prediction pass; ``extra_slices``
    names more slices of the predictions (e.g. from a synthetic world's hidden truth)."""
    found = eval_predictions(trained, dataset, generated)
    overall = metrics(found.labels, found.probabilities, found.users)
    slices = slice_metrics(trained, found)
    for key, rows in (extra_slices(found) if extra_slices else {}).items():
        slices[key] = metrics(found.labels[rows], found.probabilities[rows], found.users[rows])
    return {name: overall} | {f"{name}/{key}": value for key, value in slices.items()}
