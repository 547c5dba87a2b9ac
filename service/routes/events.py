"""Conversion of request events to the store's behaviour sequences."""

from __future__ import annotations

from collections.abc import Sequence

from service.contracts.features import event_type_id
from service.http.schemas import AppendedEvent, RecentEvent
from service.stores.base import UserSequence
from service.stores.event_log import NewEvents


def events_to_sequence(events: Sequence[RecentEvent]) -> UserSequence:
    """Request events (any order) as a sequence; ordering by time is the consumer's job."""
    return UserSequence.of(
        [e.item_id for e in events],
        [event_type_id(e.event) for e in events],
        [e.ts for e in events],
    )


def events_to_new_events(events: list[AppendedEvent]) -> NewEvents:
    """Events to append, with their idempotency keys."""
    return NewEvents(events_to_sequence(events), tuple(e.event_id for e in events))
