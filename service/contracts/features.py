"""Feature schema shared by training and serving.

The serving side owns it: training imports these functions so that the ranker sees the same
event vocabulary and time-gap buckets offline and online.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

#: Behaviour event types, in id order. Id 0 is reserved for padding.
EVENT_TYPES: tuple[str, ...] = ("click", "cart", "purchase")
PADDING_EVENT = 0
#: Number of event-type ids the model embeds (padding included).
EVENT_VOCAB_SIZE = len(EVENT_TYPES) + 1

#: Time-gap buckets: bucket b covers gaps in [2**(b-1), 2**b) minutes; bucket 0 is "under a minute",
#: the last bucket holds everything older (about 45 days and beyond).
TIME_GAP_BUCKETS = 18


def event_type_id(event: str) -> int:
    """The model id of an event type name; raises ``KeyError`` for an unknown one."""
    return EVENT_TYPES.index(event) + 1


def time_gap_buckets(
    reference_ts: int | npt.NDArray[np.int64], event_ts: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Bucket the gap between a reference time and each event time (both in Unix seconds).

    Events in the future of the reference time (clock skew) fall in bucket 0.
    """
    gap_minutes = np.maximum(np.asarray(reference_ts) - event_ts, 0) / 60.0
    buckets = np.floor(np.log2(1.0 + gap_minutes)).astype(np.int64)
    return np.clip(buckets, 0, TIME_GAP_BUCKETS - 1)


class BehaviourFeatures(NamedTuple):
    """The model inputs of behaviours besides their items, one per behaviour."""

    events: npt.NDArray[np.int64]
    """Event-type ids (:data:`EVENT_TYPES`, 1-based)."""
    gaps: npt.NDArray[np.int64]
    """Time-gap buckets from the reference time (:func:`time_gap_buckets`)."""


def behaviour_features(
    reference_ts: int | npt.NDArray[np.int64],
    event_ts: npt.NDArray[np.int64],
    event_ids: npt.NDArray[np.integer],
) -> BehaviourFeatures:
    """The features of behaviours as seen by a request scored as of ``reference_ts``.

    Training passes each request's own time; serving passes the request's ``as_of``, else the
    clock. Both call this one function, so a replayed request gets the inputs its training
    example had. ``reference_ts`` broadcasts against ``event_ts`` (a ``[R, 1]`` column of request
    times against ``[R, L]`` histories); ``event_ids`` has the shape of ``event_ts``. Which
    behaviours a request may see (strictly before its time) is the caller's choice.
    """
    events = np.asarray(event_ids, dtype=np.int64)
    if events.shape != np.shape(event_ts):
        raise ValueError(f"{events.shape} event ids for {np.shape(event_ts)} event times")
    return BehaviourFeatures(events, time_gap_buckets(reference_ts, event_ts))
