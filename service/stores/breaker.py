"""A circuit breaker in front of a networked store, so a store that is down costs nothing per call.

Closed: calls go through; ``failure_threshold`` store failures in a row (timeouts, refused
connections, error replies) open it. Open: calls fail at once with :class:`StoreCircuitOpen`,
without touching the network, for ``cool_down_s``. Half-open: after the cool-down one call at a
time goes through as a probe (the others still fail fast); a probe that succeeds closes the
breaker, one that fails opens it again for another cool-down.

Only :class:`~service.errors.StoreError` counts as a failure. A call cancelled from outside (the
request's own deadline, a client gone) or one that fails for another reason gives no verdict; a
cancelled probe lets the next call probe instead.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from service.errors import StoreCircuitOpen, StoreError

T = TypeVar("T")


class BreakerState(StrEnum):
    CLOSED = "closed"
    """Calls reach the store."""
    OPEN = "open"
    """Calls fail fast, without touching the network."""
    HALF_OPEN = "half_open"
    """One call at a time probes whether the store is back."""


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 5
    """Consecutive store failures that open the breaker; 0 never opens it."""
    cool_down_s: float = 5.0
    """How long an open breaker fails fast before it lets a probe through."""


TransitionListener = Callable[[BreakerState, BreakerState], None]


class CircuitBreaker:
    """The state machine above; ``call`` runs one store operation under it."""

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.policy = policy
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self._last_failure: StoreError | None = None
        self._listeners: list[TransitionListener] = []

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker whose cool-down is over reads half-open)."""
        if self._state is BreakerState.OPEN and self._cooled_down():
            self._move(BreakerState.HALF_OPEN)
        return self._state

    def on_transition(self, listener: TransitionListener) -> None:
        """Call ``listener(old, new)`` at every change of state."""
        self._listeners.append(listener)

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """``await operation()`` if the breaker lets it through, recording its verdict."""
        probe = self._admit()
        try:
            result = await operation()
        except StoreError as error:
            self._failed(error)
            raise
        except BaseException:
            if probe:
                self._probing = False
            raise
        self._succeeded()
        return result

    def _admit(self) -> bool:
        """Whether the call is the half-open probe; raises when the call may not go through."""
        state = self.state
        if state is BreakerState.CLOSED:
            return False
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        retry_s = max(self.policy.cool_down_s - (self._clock() - self._opened_at), 0.0)
        cause = f" (last: {self._last_failure.message})" if self._last_failure else ""
        raise StoreCircuitOpen(
            f"{self.name} is not called: its circuit opened after "
            f"{self.policy.failure_threshold} failures in a row{cause}; next probe in "
            f"{retry_s:.1f} s",
            opened_by=self._last_failure,
        )

    def _failed(self, error: StoreError) -> None:
        self._probing = False
        self._last_failure = error
        if self._state is BreakerState.HALF_OPEN:
            self._open()
            return
        self._failures += 1
        threshold = self.policy.failure_threshold
        if self._state is BreakerState.CLOSED and threshold and self._failures >= threshold:
            self._open()

    def _succeeded(self) -> None:
        self._probing = False
        self._failures = 0
        self._last_failure = None
        if self._state is not BreakerState.CLOSED:
            self._move(BreakerState.CLOSED)

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._failures = 0
        self._move(BreakerState.OPEN)

    def _cooled_down(self) -> bool:
        return self._clock() - self._opened_at >= self.policy.cool_down_s

    def _move(self, state: BreakerState) -> None:
        old, self._state = self._state, state
        for listener in self._listeners:
            listener(old, state)
