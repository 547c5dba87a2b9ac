"""After the run: is every acknowledged event in the store?"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import redis

from chaos.traffic import Event
from service.contracts import keys


def events_found(client: redis.Redis, events: list[Event]) -> int:
    """How many of ``events`` the store holds: the event ID among the user's recorded IDs and
    the (item, timestamp) in the user's sequence."""
    by_user: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_user[event.user_id].append(event)
    found = 0
    for user_id, user_events in by_user.items():
        pipe = client.pipeline(transaction=False)
        pipe.zrange(keys.user_event_ids_key(user_id), 0, -1)
        pipe.hmget(keys.user_sequence_key(user_id), [keys.SEQ_ITEMS, keys.SEQ_TIMESTAMPS])
        raw_ids, (raw_items, raw_ts) = pipe.execute()
        recorded = {raw.decode() for raw in raw_ids}
        items = keys.decode_item_ids(raw_items or b"")
        stamps = np.frombuffer(raw_ts or b"", keys.TIMESTAMP_DTYPE).tolist()
        behaviours = set(zip(items, stamps, strict=True))
        found += sum(
            event.event_id in recorded and (event.item_id, event.ts) in behaviours
            for event in user_events
        )
    return found
