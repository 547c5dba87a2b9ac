"""What a ranking produces: scored items, degradations, timings and explanations."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Degradation(StrEnum):
    """Machine-readable reasons a ranking ran on less than the full picture."""

    STORE_TIMEOUT = "store_timeout"
    """The store did not answer in time: scored from the bundle's item table only."""
    STORE_UNAVAILABLE = "store_unavailable"
    """The store cannot be reached (refused connection, unknown host: check REASEQ_REDIS_URL
    and the server): scored from the bundle's item table only."""
    STORE_ERROR = "store_error"
    """The store answered with an error: scored from the bundle's item table only."""
    UNKNOWN_USER = "unknown_user"
    """No stored sequence and no usable recent events: scored from candidates (and generated
    behaviours) only."""
    UNKNOWN_ITEMS = "unknown_items"
    """Some candidates are not in the item table: they were scored from the default vector."""
    UNKNOWN_EVENT_ITEMS = "unknown_event_items"
    """Some recent events name unknown items: those events were dropped."""
    NO_GENERATED_BEHAVIOURS = "no_generated_behaviours"
    """The bundle expects generated behaviours and the user has none."""


@dataclass(frozen=True, slots=True)
class ScoredItem:
    item_id: str
    score: float


@dataclass(frozen=True, slots=True)
class ExplainedBehaviour:
    item_id: str
    source: Literal["real", "generated"]
    weight: float


@dataclass(frozen=True, slots=True)
class Explanation:
    item_id: str
    behaviours: list[ExplainedBehaviour]


@dataclass(frozen=True, slots=True)
class Timings:
    fetch: float
    model: float
    total: float


@dataclass(frozen=True, slots=True)
class Ranking:
    """The answer to one rank request, shaped like the HTTP response."""

    request_id: str
    bundle_version: str
    items: list[ScoredItem]
    degraded: list[Degradation]
    timings_ms: Timings
    explanations: list[Explanation] | None
    #: The experiment and the arm that answered; None while no experiment runs.
    experiment: str | None = None
    arm: str | None = None
