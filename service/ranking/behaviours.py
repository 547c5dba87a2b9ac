"""Behaviour blocks fed to the ranker: the merged real sequence and the generated block.

The real sequence is the stored one followed by the request's recent events, ordered by time
and cut to the bundle's maximum length (and, for a request scored as of a past time, to the
behaviours before it). An empty block is padded to one masked slot, as the
graph contract asks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.contracts.features import PADDING_EVENT, behaviour_features
from service.stores.base import FetchResult, FloatArray, GeneratedBehaviours, UserSequence

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class BehaviourBlock:
    """``L`` behaviours as model inputs; ``mask`` is 1 for a real slot, 0 for padding."""

    item_ids: list[str]
    vectors: FloatArray  # [L, d]
    mask: FloatArray  # [L]
    events: IntArray  # [L]
    gaps: IntArray  # [L]

    @property
    def length(self) -> int:
        """Behaviours that are not padding."""
        return int(self.mask.sum())

    @classmethod
    def padding(cls, dim: int) -> BehaviourBlock:
        zeros = np.zeros(1, np.int64)
        return cls([""], np.zeros((1, dim), np.float32), np.zeros(1, np.float32), zeros, zeros)


@dataclass(frozen=True, slots=True)
class RealBehaviours:
    block: BehaviourBlock
    dropped_events: int  # recent events naming unknown items
    stored: bool  # the store had a sequence for the user


def real_behaviours(
    fetched: FetchResult,
    recent: UserSequence,
    max_length: int,
    now: int,
    as_of: int | None = None,
) -> RealBehaviours:
    """Merge the stored sequence with the recent events whose items are known.

    Time gaps are measured from ``as_of`` when the request names one (a replayed request), and
    then only behaviours strictly before it are used, as in training: a request never sees its
    own future. Without ``as_of`` they are measured from ``now`` and every behaviour is used.
    """
    dim = fetched.candidate_vectors.shape[1]
    stored, stored_vectors = _before(
        fetched.sequence or UserSequence.empty(), fetched.sequence_vectors, as_of
    )
    known = fetched.event_item_known
    dropped = len(recent) - int(known.sum())
    keep = np.flatnonzero(known if as_of is None else known & (recent.timestamps < as_of))
    reference = now if as_of is None else as_of
    if len(keep) == 0 and len(stored) > 0 and _in_time_order(stored.timestamps):
        # The common case (the store's sequence alone, oldest first): the newest slice of it.
        start = max(0, len(stored) - max_length)
        features = behaviour_features(reference, stored.timestamps[start:], stored.events[start:])
        block = BehaviourBlock(
            item_ids=stored.item_ids[start:],
            vectors=np.ascontiguousarray(stored_vectors[start:], np.float32),
            mask=np.ones(len(stored) - start, np.float32),
            events=features.events,
            gaps=features.gaps,
        )
        return RealBehaviours(block, dropped, fetched.sequence is not None)
    item_ids = stored.item_ids + [recent.item_ids[i] for i in keep]
    events = np.concatenate([stored.events, recent.events[keep]])
    timestamps = np.concatenate([stored.timestamps, recent.timestamps[keep]])
    vectors = np.concatenate([stored_vectors, fetched.event_item_vectors[keep]])
    order = np.argsort(timestamps, kind="stable")[-max_length:]
    if len(order) == 0:
        return RealBehaviours(BehaviourBlock.padding(dim), dropped, fetched.sequence is not None)
    features = behaviour_features(reference, timestamps[order], events[order])
    block = BehaviourBlock(
        item_ids=[item_ids[i] for i in order],
        vectors=np.ascontiguousarray(vectors[order], np.float32),
        mask=np.ones(len(order), np.float32),
        events=features.events,
        gaps=features.gaps,
    )
    return RealBehaviours(block, dropped, fetched.sequence is not None)


def _before(
    stored: UserSequence, vectors: FloatArray, as_of: int | None
) -> tuple[UserSequence, FloatArray]:
    """The stored behaviours strictly before ``as_of`` and their vectors; all without one."""
    if as_of is None:
        return stored, vectors
    before = stored.timestamps < as_of
    if before.all():
        return stored, vectors
    rows = np.flatnonzero(before)
    kept = UserSequence(
        [stored.item_ids[i] for i in rows], stored.events[rows], stored.timestamps[rows]
    )
    return kept, vectors[rows]


def _in_time_order(timestamps: npt.NDArray[np.int64]) -> bool:
    return bool((timestamps[1:] >= timestamps[:-1]).all())


def generated_block(generated: GeneratedBehaviours | None, max_k: int, dim: int) -> BehaviourBlock:
    """The first ``max_k`` generated behaviours; padding when there are none or K is 0."""
    if generated is None or max_k == 0 or len(generated) == 0:
        return BehaviourBlock.padding(dim)
    k = min(max_k, len(generated))
    padding = np.full(k, PADDING_EVENT, np.int64)
    return BehaviourBlock(
        item_ids=generated.item_ids[:k],
        vectors=np.ascontiguousarray(generated.vectors[:k], np.float32),
        mask=np.ones(k, np.float32),
        events=padding,
        gaps=np.zeros(k, np.int64),
    )
