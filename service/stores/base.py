"""The store boundary: what the ranking pipeline asks of a backend, and what it gets back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from service.errors import StoreError, StoreUnavailable

if TYPE_CHECKING:
    from service.stores.breaker import CircuitBreaker
    from service.stores.event_log import AppendResult, NewEvents

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class FetchQuery:
    """Everything one ranking request needs from the store."""

    user_id: str
    candidate_ids: Sequence[str]
    event_item_ids: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class UserSequence:
    """A user's behaviours, oldest first: item IDs, event-type ids
    (:mod:`service.contracts.features`), Unix seconds."""

    item_ids: list[str]
    events: npt.NDArray[np.uint8]
    timestamps: npt.NDArray[np.int64]

    def __post_init__(self) -> None:
        if not len(self.item_ids) == len(self.events) == len(self.timestamps):
            raise ValueError(
                f"sequence columns differ in length: {len(self.item_ids)} items, "
                f"{len(self.events)} events, {len(self.timestamps)} timestamps"
            )

    def __len__(self) -> int:
        return len(self.item_ids)

    @classmethod
    def empty(cls) -> UserSequence:
        return cls([], np.zeros(0, np.uint8), np.zeros(0, np.int64))

    @classmethod
    def of(
        cls, item_ids: Sequence[str], events: Sequence[int], timestamps: Sequence[int]
    ) -> UserSequence:
        return cls(list(item_ids), np.asarray(events, np.uint8), np.asarray(timestamps, np.int64))


@dataclass(frozen=True, slots=True)
class GeneratedBehaviours:
    """The K behaviours GBR inferred for a user, as item vectors ``[K, d]``, in the generator's
    order (a bundle with slot vectors, ``dimensions.generated_slots``, reads that order)."""

    item_ids: list[str]
    vectors: FloatArray
    gbr_version: str

    def __len__(self) -> int:
        return int(self.vectors.shape[0])


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The answer to a :class:`FetchQuery`; unknown items carry the bundle's default vector."""

    sequence: UserSequence | None
    sequence_vectors: FloatArray  # [L, d]
    generated: GeneratedBehaviours | None
    candidate_vectors: FloatArray  # [C, d]
    candidate_known: BoolArray  # [C]
    event_item_vectors: FloatArray  # [E, d]
    event_item_known: BoolArray  # [E]


class RankingStore(ABC):
    """A backend holding user sequences, generated behaviours and item vectors."""

    @abstractmethod
    async def fetch(self, query: FetchQuery) -> FetchResult:
        """Everything for one request, in one round trip.

        Raises, so that the caller can serve degraded from the bundle alone, by cause:
        ``StoreTimeout`` when the store gives no answer within its budget, ``StoreUnavailable``
        when it cannot be reached (``StoreCircuitOpen``, behind an open circuit, names the
        failure that opened it), ``StoreError`` when it fails otherwise (an error reply)."""

    @abstractmethod
    async def ping(self) -> bool:
        """Whether the store answers."""

    async def check(self) -> StoreError | None:
        """None when the store answers now; else the error that says why it does not."""
        return None if await self.ping() else StoreUnavailable("the store does not answer")

    @abstractmethod
    async def append_events(self, user_id: str, events: NewEvents) -> AppendResult:
        """Append behaviours to a user's capped sequence by the rules of
        :mod:`service.stores.event_log`, atomically with the record of their event IDs; raises
        ``StoreError`` when the store cannot take the write (nothing is then appended, or all
        is: retry with the same event IDs)."""

    @property
    def breaker(self) -> CircuitBreaker | None:
        """The circuit breaker in front of a networked store; None for an in-process one."""
        return None

    @abstractmethod
    async def close(self) -> None:
        """Release connections and files."""
