"""Per-user cache of the user encoder's output: the keys and values of both behaviour pools.

The repeated requests of one session (refresh, pagination, several slots on a page) share the
user's behaviours, so they can skip the user encoder. An entry is found by user and bundle
version, and is used only when its fingerprint matches the behaviours of the request at hand:
the item IDs, event types and time-gap buckets of the real sequence (the request's
``recent_events`` are merged in, time moves events into other buckets, and a request's ``as_of``
both cuts the sequence and moves the reference of its gaps), and the IDs and
generator version of the generated block. Item vectors are immutable within a bundle version,
so the IDs stand for them. A stale entry can never be served: it simply misses and is replaced.

Bounded by bytes, least recently used first out; safe to share between scoring threads. The
entries are whatever the runner attends over: head-major NumPy arrays on the host path, tensors
in device memory on the device path (counted against the same budget).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from service.ranking.behaviours import BehaviourBlock

_SEPARATOR = b"\x1f"
_ENTRY_OVERHEAD = 512  # bytes of Python objects around an entry's arrays


@dataclass(frozen=True, slots=True)
class UserKey:
    user_id: str
    bundle_version: str


class EncodedPool(Protocol):
    """One behaviour pool's keys and values as a runner keeps them."""

    @property
    def length(self) -> int:
        """Behaviours in the pool."""

    @property
    def nbytes(self) -> int:
        """Memory the keys and values take."""


Pool = TypeVar("Pool", bound=EncodedPool)


@dataclass(frozen=True, slots=True)
class EncodedUser(Generic[Pool]):
    """What the user encoder computed for one set of behaviours, ready for attention."""

    fingerprint: bytes
    real: Pool
    generated: Pool

    @property
    def nbytes(self) -> int:
        return self.real.nbytes + self.generated.nbytes + _ENTRY_OVERHEAD


def behaviours_fingerprint(real: BehaviourBlock, generated: BehaviourBlock) -> bytes:
    """A digest of everything the user encoder's output depends on besides the bundle."""
    digest = hashlib.blake2b(digest_size=16)
    for block in (real, generated):
        digest.update("\x1f".join(block.item_ids).encode())
        digest.update(_SEPARATOR)
        digest.update(block.mask.tobytes())
        digest.update(block.events.tobytes())
        digest.update(block.gaps.tobytes())
    return digest.digest()


@dataclass(frozen=True, slots=True)
class CacheStats:
    entries: int
    bytes: int
    capacity_bytes: int


class UserStateCache:
    """LRU by bytes of :class:`EncodedUser` per :class:`UserKey`; ``capacity_bytes=0`` disables."""

    def __init__(self, capacity_bytes: int, on_resize: Callable[[int], None] | None = None) -> None:
        self.capacity_bytes = capacity_bytes
        self._on_resize = on_resize
        self._entries: OrderedDict[UserKey, EncodedUser[Any]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.capacity_bytes > 0

    def get(self, key: UserKey, fingerprint: bytes) -> EncodedUser[Any] | None:
        """The entry for ``key`` when it was computed from the same behaviours, else None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.fingerprint != fingerprint:
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key: UserKey, entry: EncodedUser[Any]) -> None:
        """Keep ``entry`` (replacing the user's older one); entries too large are not kept."""
        if entry.nbytes > self.capacity_bytes:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= previous.nbytes
            self._entries[key] = entry
            self._bytes += entry.nbytes
            while self._bytes > self.capacity_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.nbytes
            held = self._bytes
        if self._on_resize is not None:
            self._on_resize(held)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(len(self._entries), self._bytes, self.capacity_bytes)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
        if self._on_resize is not None:
            self._on_resize(0)
