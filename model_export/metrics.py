"""Ranking metrics: AUC, GAUC (per-user AUC weighted by impressions) and logloss.

Plain NumPy with tie-aware rank statistics, so evaluation needs no scikit-learn at run time; the
tests hold them against scikit-learn.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from service.contracts.manifest import EvaluationMetrics

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


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
