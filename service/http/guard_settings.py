"""The settings of the HTTP guards (:mod:`service.http.guards`): body limits, admission of rank
requests, connections and API keys. :class:`service.settings.Settings` inherits them, so they read
``REASEQ_<FIELD NAME>`` like every other setting and are documented with them."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class GuardSettings(BaseSettings):
    """What stands between a caller and the routes; part of the service's settings."""

    model_config = SettingsConfigDict(env_prefix="REASEQ_", extra="ignore", populate_by_name=True)

    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="Largest request body; a larger one is answered 413 before it is parsed.",
    )
    body_read_timeout_ms: int = Field(
        default=10_000,
        ge=100,
        le=600_000,
        description="Time for a request body to arrive in full, from its first read; a slower "
        "one is answered 408 body_timeout.",
    )
    rank_max_in_flight: int | None = Field(
        default=None,
        ge=1,
        description="Admission slots per worker: the rank work served at once (a request holds "
        "one slot per REASEQ_RANK_SLOT_BODY_BYTES of its body, at least one); unset = 9 per "
        "scoring thread that has a core of its own (REASEQ_SCORING_THREADS, at most the usable "
        "cores over REASEQ_WORKERS).",
    )
    rank_congested_max_in_flight: int | None = Field(
        default=None,
        ge=1,
        description="Admission slots while the queue stands (sustained overload, see "
        "REASEQ_RANK_QUEUE_CONGESTED_TIMEOUT_MS): past capacity each slot taken only adds to "
        "the others' latency; unset = a third of REASEQ_RANK_MAX_IN_FLIGHT (at least two).",
    )
    rank_slot_body_bytes: int = Field(
        default=6144,
        ge=0,
        description="Request body bytes per admission slot (rounded, at least one slot, at "
        "most all of them): a request naming more candidates and events holds more of the "
        "slots; 0 = one slot per request.",
    )
    rank_max_queued: int | None = Field(
        default=None,
        ge=0,
        description="Rank requests waiting for slots per worker, more: 429 (in a standing "
        "queue the oldest waiter gets the 429); unset = 4 per slot.",
    )
    rank_queue_timeout_ms: int | None = Field(
        default=None,
        ge=1,
        le=60_000,
        description="Longest wait for a slot, longer: 429; unset = half the latency "
        "objective (REASEQ_LATENCY_OBJECTIVE_MS).",
    )
    rank_queue_congested_timeout_ms: float | None = Field(
        default=None,
        ge=0,
        le=60_000,
        description="Longest wait for a slot once the queue stands (in the last "
        "REASEQ_RANK_QUEUE_CONGESTION_INTERVAL_MS more requests arrived than completed by more "
        "than the slots and the queue hold), longer: 429; a standing queue also serves the newest "
        "request first. Unset = a tenth of the latency objective; 0 = off (first come, first "
        "served with REASEQ_RANK_QUEUE_TIMEOUT_MS throughout).",
    )
    rank_queue_congestion_interval_ms: float | None = Field(
        default=None,
        gt=0,
        le=600_000,
        description="The window over which rank arrivals and completions are counted to tell "
        "a standing queue; unset = five latency objectives.",
    )
    rank_max_in_flight_per_key: int | None = Field(
        default=None,
        ge=1,
        description="Slots, and as many queue places, one API key may hold per worker, more: "
        "429; unset = all but a quarter (at least one) of REASEQ_RANK_MAX_IN_FLIGHT. Only "
        "where rank keys are set.",
    )
    rank_retry_after_s: int = Field(
        default=1, ge=1, le=3600, description="Retry-After of a 429 from load shedding."
    )
    max_connections: int = Field(
        default=2048,
        ge=1,
        description="Open HTTP connections per worker; at the cap a new one closes the "
        "connection idle or waiting for its headers the longest, or is refused when every "
        "one is busy with a request. Raised to fit the open-file limit, or lowered to it.",
    )
    header_read_timeout_ms: int = Field(
        default=5000,
        ge=100,
        le=600_000,
        description="Time for a request's headers to arrive in full, from the connection's "
        "opening (or a later request's first byte); a slower connection is closed.",
    )
    max_header_bytes: int = Field(
        default=16_384,
        ge=1024,
        le=1_048_576,
        description="Largest request line and header fields of a request; a larger one is "
        "answered 431 headers_too_large and its connection closed, before a worker sees it.",
    )
    api_keys: SecretStr | None = Field(
        default=None,
        description="X-API-Key values /v1/rank and /v1/outcomes accept, comma-separated; unset "
        "(and no file) = they need no key.",
    )
    api_keys_file: Path | None = Field(
        default=None,
        description="File of /v1/rank (and /v1/outcomes) keys, one per line; re-read when it "
        "changes.",
    )
    admin_api_key: SecretStr | None = Field(
        default=None,
        description="X-API-Key values of the admin endpoints, comma-separated; unset (and no "
        "file) = admin disabled.",
    )
    admin_api_keys_file: Path | None = Field(
        default=None,
        description="File of admin keys, one per line; re-read when it changes.",
    )
