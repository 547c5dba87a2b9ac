"""The merged real behaviour block against a plain reference: every event of the store and of
the request whose item is known (and, given ``as_of``, strictly before it), ordered by time
(ties: the store's first, then in order), the newest ``max_length`` of them, with time gaps from
``as_of`` or else from now."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from service.contracts.features import (
    TIME_GAP_BUCKETS,
    BehaviourFeatures,
    behaviour_features,
    time_gap_buckets,
)
from service.ranking.behaviours import real_behaviours
from service.stores.base import FetchResult, UserSequence

DIM = 4
NOW = 1_790_000_000


@st.composite
def fetches(draw: st.DrawFn) -> tuple[FetchResult, UserSequence, int, int | None]:
    stored_ts = draw(st.lists(st.integers(NOW - 10**6, NOW + 60), max_size=12))
    if draw(st.booleans()):
        stored_ts.sort()  # what stores hold; the unsorted case checks the general path
    recent_ts = draw(st.lists(st.integers(NOW - 10**6, NOW + 60), max_size=5))
    known = draw(st.lists(st.booleans(), min_size=len(recent_ts), max_size=len(recent_ts)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    has_sequence = bool(stored_ts) or draw(st.booleans())
    stored = UserSequence.of(
        [f"s{n}" for n in range(len(stored_ts))],
        rng.integers(0, 3, len(stored_ts)),
        stored_ts,
    )
    recent = UserSequence.of(
        [f"r{n}" for n in range(len(recent_ts))], rng.integers(0, 3, len(recent_ts)), recent_ts
    )
    fetched = FetchResult(
        sequence=stored if has_sequence else None,
        sequence_vectors=rng.standard_normal((len(stored_ts), DIM)).astype(np.float32),
        generated=None,
        candidate_vectors=np.zeros((1, DIM), np.float32),
        candidate_known=np.ones(1, bool),
        event_item_vectors=rng.standard_normal((len(recent_ts), DIM)).astype(np.float32),
        event_item_known=np.asarray(known, bool),
    )
    # as_of: none, on an event's time (that event is its future) or anywhere in the period
    times = st.integers(NOW - 10**6, NOW)
    on_an_event = st.sampled_from(stored_ts + recent_ts) if stored_ts + recent_ts else times
    as_of = draw(st.none() | on_an_event | times)
    return fetched, recent, draw(st.integers(1, 15)), as_of


@settings(max_examples=300, deadline=None)
@given(fetches())
def test_the_block_is_the_newest_known_behaviours_in_time_order(
    case: tuple[FetchResult, UserSequence, int, int | None],
) -> None:
    fetched, recent, max_length, as_of = case
    stored = fetched.sequence or UserSequence.empty()
    rows = [
        (int(ts), 0, n, stored.item_ids[n], int(stored.events[n]), fetched.sequence_vectors[n])
        for n, ts in enumerate(stored.timestamps)
    ] + [
        (int(ts), 1, n, recent.item_ids[n], int(recent.events[n]), fetched.event_item_vectors[n])
        for n, ts in enumerate(recent.timestamps)
        if fetched.event_item_known[n]
    ]
    if as_of is not None:
        rows = [row for row in rows if row[0] < as_of]
    expected = sorted(rows, key=lambda row: row[:3])[-max_length:]

    merged = real_behaviours(fetched, recent, max_length, NOW, as_of)

    assert merged.dropped_events == int((~fetched.event_item_known).sum())
    assert merged.stored == (fetched.sequence is not None)
    block = merged.block
    if not expected:
        assert block.length == 0 and block.mask.tolist() == [0.0]
        return
    assert block.item_ids == [row[3] for row in expected]
    assert block.events.tolist() == [row[4] for row in expected]
    assert block.events.dtype == np.int64 and block.gaps.dtype == np.int64
    np.testing.assert_array_equal(block.vectors, np.stack([row[5] for row in expected]))
    assert block.vectors.dtype == np.float32 and block.vectors.flags.c_contiguous
    reference = NOW if as_of is None else as_of
    np.testing.assert_array_equal(
        block.gaps, time_gap_buckets(reference, np.asarray([row[0] for row in expected], np.int64))
    )
    assert block.mask.tolist() == [1.0] * len(expected)


def test_gaps_are_measured_from_as_of_not_from_now() -> None:
    day = 86_400
    stored = UserSequence.of(["a", "b", "c"], [1, 2, 3], [NOW - 30 * day, NOW - 2 * day, NOW])
    fetched = FetchResult(
        sequence=stored,
        sequence_vectors=np.eye(3, DIM, dtype=np.float32),
        generated=None,
        candidate_vectors=np.zeros((1, DIM), np.float32),
        candidate_known=np.ones(1, bool),
        event_item_vectors=np.zeros((0, DIM), np.float32),
        event_item_known=np.zeros(0, bool),
    )
    replayed = real_behaviours(fetched, UserSequence.empty(), 10, now=NOW + 365 * day, as_of=NOW)
    # c happened at as_of: the request's own time is its future, as in training
    assert replayed.block.item_ids == ["a", "b"]
    expected = behaviour_features(
        NOW, np.asarray([NOW - 30 * day, NOW - 2 * day]), np.asarray([1, 2])
    )
    assert replayed.block.gaps.tolist() == expected.gaps.tolist() == [15, 11]
    assert replayed.block.events.tolist() == expected.events.tolist() == [1, 2]
    live = real_behaviours(fetched, UserSequence.empty(), 10, now=NOW + 365 * day)
    assert live.block.item_ids == ["a", "b", "c"]
    assert live.block.gaps.tolist() == [TIME_GAP_BUCKETS - 1] * 3


def test_behaviour_features_broadcast_a_column_of_request_times() -> None:
    request_ts = np.asarray([[NOW], [NOW + 3600]])
    event_ts = np.asarray([[NOW - 60, NOW], [NOW - 60, NOW]])
    features = behaviour_features(request_ts, event_ts, np.asarray([[1, 3], [2, 2]], np.uint8))
    assert isinstance(features, BehaviourFeatures)
    assert features.events.dtype == np.int64 and features.events.tolist() == [[1, 3], [2, 2]]
    np.testing.assert_array_equal(features.gaps, time_gap_buckets(request_ts, event_ts))
