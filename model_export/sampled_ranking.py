"""Evaluation against sampled items (HR@10, NDCG@10) and the popularity baseline's scores.

Each test request with a click is re-ranked: its clicked item against ``n`` items the user never
interacted with, drawn by the same rule as the training negatives (popularity known at the
request's time, :func:`offline.data.loaders.assemble.sample_negatives`), with the request's own
history. A hit is the clicked item in the top 10; ties with sampled items count half, so a
constant score earns what a random order would.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from model_export.dataset import RankingExamples
from model_export.metrics import Floats, Ints
from offline.data.canonical import Dataset
from offline.data.loaders.assemble import sample_negatives

CUTOFF = 10


@dataclass(frozen=True)
class SampledRanking:
    hr: float
    ndcg: float
    requests: int

    def as_dict(self) -> dict[str, float]:
        return {"hr@10": self.hr, "ndcg@10": self.ndcg, "requests": float(self.requests)}


def engagement_log(dataset: Dataset) -> tuple[Ints, Ints, Ints]:
    """``(user, item, ts)`` of every logged behaviour and impression: what a user touched."""
    beh, imp = dataset.behaviours, dataset.impressions
    return (
        np.concatenate([beh.user_idx, imp.user_idx]).astype(np.int64),
        np.concatenate([beh.item_idx, imp.item_idx]).astype(np.int64),
        np.concatenate([beh.ts, imp.ts]).astype(np.int64),
    )


def sampled_candidates(
    dataset: Dataset, examples: RankingExamples, n: int, seed: int
) -> RankingExamples:
    """The clicked requests of ``examples`` with candidates ``[clicked item, n sampled]``.

    Popularity is counted over behaviours (engagements) only, so the sampled impressions of the
    log do not feed back into it; the user's exclusions cover behaviours and impressions.
    """
    clicked = examples.labels.argmax(axis=1)
    rows = np.flatnonzero(examples.labels.max(axis=1) > 0)
    beh = dataset.behaviours
    users, items, _ = engagement_log(dataset)
    n_items = len(dataset.catalogue)
    negatives = sample_negatives(
        examples.user_idx[rows].astype(np.int64),
        examples.ts[rows].astype(np.int64),
        beh.user_idx.astype(np.int64),
        beh.item_idx.astype(np.int64),
        beh.ts.astype(np.int64),
        n,
        np.random.default_rng(seed),
        engaged=np.unique(users * n_items + items),
        n_items=n_items,
    )
    positives = examples.candidate_items[rows, clicked[rows]]
    candidates = np.hstack([positives[:, None], negatives])
    mask = candidates >= 0
    labels = np.zeros(candidates.shape, np.float32)
    labels[:, 0] = 1.0
    chosen = examples.subset(rows)
    return replace(
        chosen,
        candidate_items=np.where(mask, candidates, 0).astype(np.int64),
        labels=labels,
        candidate_mask=mask,
    )


def hit_rate_ndcg(scores: Floats, candidates: RankingExamples) -> SampledRanking:
    """HR@10 and NDCG@10 of the clicked item (column 0) among each row's valid candidates."""
    mask = candidates.candidate_mask
    positive = scores[:, :1]
    above = ((scores > positive) & mask).sum(axis=1)
    tied = ((scores == positive) & mask).sum(axis=1) - 1
    rank = above + 0.5 * tied  # 0-based, ties split evenly
    hit = rank < CUTOFF
    gain = np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0)
    return SampledRanking(float(hit.mean()), float(gain.mean()), len(scores))


def popularity_scores(dataset: Dataset, items: Ints, ts: Ints) -> Floats:
    """Per slot, the item's behaviours strictly before its request's time ``[R, C]``."""
    beh = dataset.behaviours
    order = np.lexsort((beh.ts, beh.item_idx))
    beh_items, beh_ts = beh.item_idx[order].astype(np.int64), beh.ts[order].astype(np.int64)
    t0 = int(min(beh_ts.min(initial=0), ts.min(initial=0)))
    span = int(max(beh_ts.max(initial=0), ts.max(initial=0))) - t0 + 1
    keys = beh_items * span + (beh_ts - t0)
    request_ts = np.broadcast_to(ts[:, None], items.shape)
    start = np.searchsorted(keys, items * span, side="left")
    end = np.searchsorted(keys, items * span + (request_ts - t0), side="left")
    return (end - start).astype(np.float64)
