"""Offline evaluation on the evaluation side of the time split: AUC, GAUC and logloss.

The metric functions are plain NumPy (tie-aware rank statistics), so evaluation needs no
scikit-learn at run time; the tests hold them against scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from model_export.dataset import (
    GeneratedBlocksLog,
    RankingExamples,
    batch_logits,
    batches,
    time_split,
)
from model_export.train import TrainedRanker
from offline.data.canonical import Dataset
from service.contracts.manifest import EvaluationMetrics

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

#: Users with at most this many real behaviours before a request count as sparse.
SPARSE_USER_HISTORY = 5


def _grouped_auc(labels: Floats, scores: Floats, groups: Ints) -> tuple[Floats, Ints, Ints]:
    """AUC per group with tied scores sharing their average rank (the Mann-Whitney statistic).

    Returns per-group AUC (NaN where a group lacks one class), positives and negatives.
    """
    order = np.lexsort((scores, groups))
    g, s, y = groups[order], scores[order], labels[order]
    n = len(g)
    new_group = np.r_[True, g[1:] != g[:-1]]
    new_tie = new_group | np.r_[True, s[1:] != s[:-1]]
    tie_id = np.cumsum(new_tie) - 1
    tie_start = np.flatnonzero(new_tie)
    tie_end = np.r_[tie_start[1:], n]
    global_rank = ((tie_start + tie_end + 1) / 2.0)[tie_id]  # 1-based average rank
    group_id = np.cumsum(new_group) - 1
    group_start = np.flatnonzero(new_group)
    rank = global_rank - group_start[group_id]
    positives = np.bincount(group_id, weights=y).astype(np.int64)
    sizes = np.bincount(group_id).astype(np.int64)
    negatives = sizes - positives
    rank_sum = np.bincount(group_id, weights=rank * y)
    pairs = positives * negatives
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - positives * (positives + 1) / 2.0) / pairs
    return np.where(pairs > 0, auc, np.nan), positives, negatives


def auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the ROC curve; 0.5 when only one class is present (nothing to rank)."""
    y = np.asarray(labels, dtype=np.float64)
    if len(y) == 0:
        return 0.5
    per_group, _, _ = _grouped_auc(y, np.asarray(scores, np.float64), np.zeros(len(y), np.int64))
    return 0.5 if np.isnan(per_group[0]) else float(per_group[0])


def gauc(labels: npt.ArrayLike, scores: npt.ArrayLike, users: npt.ArrayLike) -> float:
    """Per-user AUC weighted by the user's impressions, over users with clicks and non-clicks.

    This is what a ranker is for: ordering one user's candidates, not comparing users.
    """
    y = np.asarray(labels, dtype=np.float64)
    if len(y) == 0:
        return 0.5
    per_user, pos, neg = _grouped_auc(
        y, np.asarray(scores, np.float64), np.asarray(users, np.int64)
    )
    valid = ~np.isnan(per_user)
    if not valid.any():
        return 0.5
    weights = (pos + neg)[valid]
    return float(np.sum(per_user[valid] * weights) / np.sum(weights))


def logloss(labels: npt.ArrayLike, probabilities: npt.ArrayLike, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of click probabilities (clipped away from 0 and 1)."""
    y = np.asarray(labels, dtype=np.float64)
    if len(y) == 0:
        return 0.0
    p = np.clip(np.asarray(probabilities, dtype=np.float64), eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))


def metrics(labels: Floats, probabilities: Floats, users: Ints) -> EvaluationMetrics:
    return EvaluationMetrics(
        auc=auc(labels, probabilities),
        gauc=gauc(labels, probabilities, users),
        logloss=logloss(labels, probabilities),
        examples=len(labels),
    )


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
    model = trained.model.eval()
    out = np.zeros(examples.candidate_items.shape, dtype=np.float64)
    first = 0
    with torch.inference_mode():
        for batch in batches(examples, batch_size):
            logits = batch_logits(model, batch)
            rows, width = logits.shape
            out[first : first + rows, :width] = torch.sigmoid(logits).double().numpy()
            first += rows
    return out


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
) -> dict[str, EvaluationMetrics]:
    """``{name: overall, f"{name}/<slice>": ...}`` from one prediction pass."""
    found = eval_predictions(trained, dataset, generated)
    overall = metrics(found.labels, found.probabilities, found.users)
    slices = slice_metrics(trained, found)
    return {name: overall} | {f"{name}/{key}": value for key, value in slices.items()}
