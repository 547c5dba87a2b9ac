"""What the ranking pipeline reports while it runs: stage times, store outcomes, the scoring queue.

The pipeline only calls this interface; the service plugs in Prometheus metrics and tracing
(``service.observability.ranking``), and code that builds a pipeline without them (tests, tools)
gets the no-op :data:`NO_OBSERVER`. So ranking code never imports a metrics library.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from enum import StrEnum
from typing import Protocol

from service.stores.base import FetchResult


class Stage(StrEnum):
    """The timed steps of one rank request."""

    FETCH = "fetch"
    """The store round trip(s) for the user's data and the candidates' vectors."""
    USER_ENCODER = "user_encoder"
    """Split graphs: keys and values of the real and generated behaviours."""
    CANDIDATE_ENCODER = "candidate_encoder"
    """Split graphs: the candidates' queries."""
    ATTENTION = "attention"
    """Split graphs: target attention over both behaviour blocks (the kernels)."""
    SCORER = "scorer"
    """Split graphs: the MLP tower."""
    FULL = "full"
    """Full-graph mode: the one graph that does all of the above."""
    SERIALISATION = "serialisation"
    """The ranking as JSON bytes."""


class FetchOutcome(StrEnum):
    """How a store fetch ended, as counted per backend."""

    HIT = "hit"
    """The store had the user's behaviour sequence."""
    MISS = "miss"
    """The store answered but knows nothing of the user."""
    TIMEOUT = "timeout"
    """No answer within the store's or the request's budget."""
    UNAVAILABLE = "unavailable"
    """The store could not be reached (refused connection, unknown host), or its circuit is
    open after such failures."""
    ERROR = "error"
    """The store answered with an error, or the fetch failed in an unexpected way."""


class RankingObserver(Protocol):
    def stage(self, stage: Stage) -> AbstractContextManager[None]:
        """Times the block as ``stage`` (and traces it, when tracing is on)."""

    def fetched(self, outcome: FetchOutcome, result: FetchResult | None) -> None:
        """A fetch ended; ``result`` is the store's answer when there was one."""

    def scoring_queued(self) -> None:
        """A request is waiting for a scoring thread."""

    def batch_started(self, requests: int, candidates: int) -> None:
        """A scoring thread took a batch of ``requests`` with ``candidates`` in all."""

    def scoring_started(self, waited_s: float) -> None:
        """A scoring thread took a request, after it queued for ``waited_s``."""

    def scoring_abandoned(self) -> None:
        """A queued request left before a scoring thread took it (cancelled or past its
        deadline)."""

    def user_cache(self, hit: bool) -> None:
        """The per-user cache of encoded behaviours was looked up."""


class _NoObserver:
    def stage(self, stage: Stage) -> AbstractContextManager[None]:
        return nullcontext()

    def fetched(self, outcome: FetchOutcome, result: FetchResult | None) -> None:
        return None

    def scoring_queued(self) -> None:
        return None

    def batch_started(self, requests: int, candidates: int) -> None:
        return None

    def scoring_started(self, waited_s: float) -> None:
        return None

    def scoring_abandoned(self) -> None:
        return None

    def user_cache(self, hit: bool) -> None:
        return None


NO_OBSERVER: RankingObserver = _NoObserver()
