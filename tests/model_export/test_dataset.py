"""Examples are built from the past only and split by time."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from model_export.dataset import batches, build_examples, items_seen_in_training, time_split
from offline.data.canonical import Behaviours, Dataset
from service.contracts.features import time_gap_buckets


def test_histories_hold_only_events_before_the_request(
    learnable: tuple[Dataset, npt.NDArray[np.float32]],
) -> None:
    dataset, _ = learnable
    examples = build_examples(dataset, max_seq_len=20)
    beh = dataset.behaviours
    for row in np.random.default_rng(0).choice(len(examples), size=200, replace=False):
        user, ts = examples.user_idx[row], examples.ts[row]
        before = (beh.user_idx == user) & (beh.ts < ts)
        expected_items = beh.item_idx[before][-20:]
        mask = examples.sequence_mask[row]
        assert np.array_equal(examples.sequence_items[row][mask], expected_items)
        assert np.array_equal(examples.sequence_events[row][mask], beh.event[before][-20:])
        assert np.array_equal(
            examples.sequence_gaps[row][mask], time_gap_buckets(ts, beh.ts[before][-20:])
        )


def test_an_event_at_the_request_time_is_not_history(
    learnable: tuple[Dataset, npt.NDArray[np.float32]],
) -> None:
    dataset, _ = learnable
    imp, beh = dataset.impressions, dataset.behaviours
    # Move one behaviour of the first request's user onto that request's timestamp exactly.
    user, ts = imp.user_idx[0], imp.ts[0]
    moved = np.flatnonzero(beh.user_idx == user)[0]
    new_ts = beh.ts.copy()
    new_ts[moved] = ts
    order = np.lexsort((new_ts, beh.user_idx))
    shifted = replace(
        dataset,
        behaviours=Behaviours(
            user_idx=beh.user_idx[order],
            item_idx=beh.item_idx[order],
            ts=new_ts[order],
            event=beh.event[order],
        ),
    )
    examples = build_examples(shifted, max_seq_len=1000)
    row = int(np.flatnonzero(examples.ts == ts)[0])
    before = int(np.sum((shifted.behaviours.user_idx == user) & (shifted.behaviours.ts < ts)))
    assert int(examples.sequence_mask[row].sum()) == before
    for u, t, mask in zip(examples.user_idx, examples.ts, examples.sequence_mask, strict=True):
        assert mask.sum() == np.sum(
            (shifted.behaviours.user_idx == u) & (shifted.behaviours.ts < t)
        )


def test_time_split_and_candidates(learnable: tuple[Dataset, npt.NDArray[np.float32]]) -> None:
    dataset, _ = learnable
    train, evaluation = time_split(dataset, max_seq_len=10)
    assert (train.ts < dataset.split_ts).all()
    assert (evaluation.ts >= dataset.split_ts).all()
    impressions = int(train.candidate_mask.sum() + evaluation.candidate_mask.sum())
    assert impressions == len(dataset.impressions)
    clicks = float(train.labels.sum() + evaluation.labels.sum())
    assert clicks == float(dataset.impressions.clicked.sum())
    seen = items_seen_in_training(dataset)
    assert not seen[int(0.95 * len(seen))]  # launched after the split
    batch = next(batches(train, 16))
    assert batch.sequence_mask.shape == batch.sequence_items.shape
    assert batch.generated_items.shape == (16, 1)
    assert float(batch.generated_mask.sum()) == 0.0
