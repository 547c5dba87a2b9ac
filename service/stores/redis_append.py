"""Idempotent, ordered appends to a user's sequence in Redis (single node or Cluster).

An append reads the user's sequence, its vector copy and which of the batch's event IDs the
user's window already holds (one round trip, all keys in the user's slot), merges in Python by
the rules of :mod:`service.stores.event_log`, reads the vectors of the rows it cannot reuse
(item keys live in other slots), then writes with a compare-and-set Lua script: the sequence,
its vectors and the new event IDs in one atomic step, only if the sequence is still the one it
read and no other writer has recorded one of those IDs meanwhile; else it starts over. A Lua
script rather than WATCH/MULTI, because a script runs on a cluster node as it does on a single
server, and needs no connection held across round trips.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.contracts import keys
from service.errors import StoreUnavailable
from service.stores.base import FloatArray, UserSequence
from service.stores.event_log import AppendResult, MergedEvents, NewEvents, merge_events
from service.stores.redis_writer import decode_sequence, sequence_fields

ItemVectors = Callable[[Sequence[str]], Awaitable[FloatArray]]

_FIELDS = [keys.SEQ_ITEMS, keys.SEQ_EVENTS, keys.SEQ_TIMESTAMPS]
_ATTEMPTS = 16
#: Pairs per ZADD inside the script: Lua's ``unpack`` has a stack limit.
_ZADD_CHUNK = 500

# KEYS: sequence hash, event-ID window, sequence vectors.
# ARGV: [1] which of the three fields existed when read ("1"/"0" each), [2..4] their values as
# read, [5..7] the merged fields, [8] the merged vectors, [9] the window size, then pairs of
# (timestamp, event ID) to record. Returns 1 when written, 0 when the state changed since read.
_COMPARE_AND_SET = (
    """
local stored = redis.call('HMGET', KEYS[1], 'ITEMS', 'EVENTS', 'TS')
for i = 1, 3 do
  local present = string.sub(ARGV[1], i, i) == '1'
  if present ~= (stored[i] ~= false) then return 0 end
  if present and stored[i] ~= ARGV[1 + i] then return 0 end
end
for i = 10, #ARGV, 2 do
  if redis.call('ZSCORE', KEYS[2], ARGV[i + 1]) then return 0 end
end
redis.call('HSET', KEYS[1], 'ITEMS', ARGV[5], 'EVENTS', ARGV[6], 'TS', ARGV[7])
redis.call('SET', KEYS[3], ARGV[8])
local batch = {}
for i = 10, #ARGV, 2 do
  batch[#batch + 1] = ARGV[i]
  batch[#batch + 1] = ARGV[i + 1]
  if #batch >= 2 * CHUNK then
    redis.call('ZADD', KEYS[2], unpack(batch))
    batch = {}
  end
end
if #batch > 0 then redis.call('ZADD', KEYS[2], unpack(batch)) end
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[9]) - 1)
return 1
""".replace("ITEMS", keys.SEQ_ITEMS)
    .replace("EVENTS", keys.SEQ_EVENTS)
    .replace("TS", keys.SEQ_TIMESTAMPS)
    .replace("CHUNK", str(_ZADD_CHUNK))
)


@dataclass(frozen=True, slots=True)
class _StoredState:
    """A user's sequence as read: raw fields (for the compare), decoded, and its vectors."""

    raw: list[bytes | None]
    sequence: UserSequence
    vectors: FloatArray | None
    seen_ids: dict[str, float]


class SequenceAppender:
    """Appends events to users' sequences under one bundle version's vector copy."""

    def __init__(
        self,
        client: Any,
        bundle_version: str,
        dim: int,
        max_length: int,
        id_window: int,
        item_vectors: ItemVectors,
    ) -> None:
        self._client = client
        self._version = bundle_version
        self._dim = dim
        self._max_length = max_length
        self._id_window = id_window
        self._item_vectors = item_vectors
        self._compare_and_set = client.register_script(_COMPARE_AND_SET)

    async def append(self, user_id: str, events: NewEvents) -> AppendResult:
        for _ in range(_ATTEMPTS):
            stored = await self._read(user_id, events.ids())
            merged = merge_events(stored.sequence, stored.seen_ids, events, self._max_length)
            if merged.result.appended == 0:
                return merged.result
            vectors = await self._vectors(merged, stored)
            if await self._write(user_id, stored, merged, vectors):
                return merged.result
        raise StoreUnavailable(
            f"appends to user {user_id!r} kept colliding with other writers; "
            "retry with the same event IDs"
        )

    async def _read(self, user_id: str, event_ids: list[str]) -> _StoredState:
        pipe = self._client.pipeline(transaction=False)
        pipe.hmget(keys.user_sequence_key(user_id), _FIELDS)
        pipe.get(keys.user_sequence_vectors_key(user_id, self._version))
        if event_ids:
            pipe.zmscore(keys.user_event_ids_key(user_id), event_ids)
        replies = await pipe.execute()
        raw = list(replies[0])
        sequence = decode_sequence(raw) or UserSequence.empty()
        scores = replies[2] if event_ids else []
        seen = {i: s for i, s in zip(event_ids, scores, strict=True) if s is not None}
        return _StoredState(raw, sequence, self._stored_vectors(replies[1], sequence), seen)

    def _stored_vectors(self, raw: bytes | None, sequence: UserSequence) -> FloatArray | None:
        if raw is None or not len(sequence):
            return None
        return keys.decode_sequence_vectors(raw, sequence.item_ids, self._dim)

    async def _vectors(self, merged: MergedEvents, stored: _StoredState) -> FloatArray:
        """The merged sequence's item vectors: stored rows reused, the others read."""
        origins = merged.origins
        reuse = origins >= 0 if stored.vectors is not None else np.zeros(len(origins), np.bool_)
        missing = np.flatnonzero(~reuse)
        fetched = await self._item_vectors([merged.sequence.item_ids[r] for r in missing])
        vectors = np.empty((len(origins), self._dim), np.float32)
        if stored.vectors is not None:
            vectors[reuse] = stored.vectors[origins[reuse]]
        vectors[missing] = fetched
        return vectors

    async def _write(
        self, user_id: str, stored: _StoredState, merged: MergedEvents, vectors: FloatArray
    ) -> bool:
        fields = sequence_fields(merged.sequence)
        presence = "".join("0" if value is None else "1" for value in stored.raw)
        args: list[Any] = [
            presence,
            *(value or b"" for value in stored.raw),
            *(fields[name] for name in _FIELDS),
            keys.encode_sequence_vectors(merged.sequence.item_ids, vectors),
            self._id_window,
        ]
        for event_id, timestamp in merged.recorded_ids.items():
            args += [timestamp, event_id]
        script_keys = [
            keys.user_sequence_key(user_id),
            keys.user_event_ids_key(user_id),
            keys.user_sequence_vectors_key(user_id, self._version),
        ]
        return bool(await self._compare_and_set(keys=script_keys, args=args))
