"""Conversion of request events to the store's behaviour sequences."""

from __future__ import annotations

from service.features import event_type_id
from service.schemas import RecentEvent
from service.stores.base import UserSequence


def events_to_sequence(events: list[RecentEvent]) -> UserSequence:
    """Request events (any order) as a sequence; ordering by time is the consumer's job."""
    return UserSequence.of(
        [e.item_id for e in events],
        [event_type_id(e.event) for e in events],
        [e.ts for e in events],
    )
