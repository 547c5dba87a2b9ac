"""What stands between a caller and the routes: API keys, body limits, load shedding, CORS.

Middleware runs outermost first: CORS (so a browser can read even a 413 or a 429), then the API
key check of ``POST /v1/rank`` and ``/v1/outcomes`` (from the headers alone, so a caller without
a key is refused before it sends its body), then the body limit (the whole body, within its read
timeout), and only then admission of rank requests, with the key the check accepted. A slot is
thus held while a request is scored, never while its client sends it. The routes check API keys
again and the request limits with what this installs on ``app.state``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from service.http.admission import (
    CONGESTED_TIMEOUT_SHARE_OF_OBJECTIVE,
    CONGESTION_INTERVAL_OBJECTIVES,
    QUEUE_TIMEOUT_SHARE_OF_OBJECTIVE,
    QUEUED_PER_SLOT,
    AdmissionControl,
    AdmissionLimits,
    AdmissionMiddleware,
    default_congested_in_flight,
    default_in_flight,
    default_per_key,
)
from service.http.body_limit import RequestBodyLimit
from service.http.key_check import RankKeyCheck
from service.observability.metrics import ServiceMetrics
from service.settings import Settings
from service.threads import usable_cores

log = logging.getLogger(__name__)

#: The routes whose requests wait for admission; health, metrics and admin never do.
ADMITTED_PATHS = frozenset({"/v1/rank"})
#: The routes of the rank key, checked from the headers before the body is read.
RANK_KEY_PATHS = frozenset({"/v1/rank", "/v1/outcomes"})
_CORS_HEADERS = ["Content-Type", "X-API-Key", "X-Request-ID"]
_CORS_EXPOSED = ["X-Request-ID", "Retry-After"]
_CORS_MAX_AGE_S = 600


def install_guards(app: FastAPI, settings: Settings, metrics: ServiceMetrics) -> None:
    """Add the guards to ``app``; call before the observability middleware, which must wrap
    them to count and log what they refuse.

    Raises :class:`service.http.api_keys.KeyFileError` when a configured key file cannot be read.
    """
    app.state.api_keys = settings.service_keys()
    app.state.request_limits = settings.request_limits()
    limits = admission_limits(settings, usable_cores())
    control = AdmissionControl(limits, metrics.rank_in_flight, metrics.rank_queued)
    # Added innermost first.
    app.add_middleware(
        AdmissionMiddleware,
        control=control,
        paths=ADMITTED_PATHS,
        shed=metrics.rank_shed,
    )
    app.add_middleware(
        RequestBodyLimit,
        max_bytes=settings.max_body_bytes,
        read_timeout_s=settings.body_read_timeout_ms / 1000.0,
        labelled_paths=ADMITTED_PATHS,
    )
    app.add_middleware(RankKeyCheck, keys=app.state.api_keys.rank, paths=RANK_KEY_PATHS)
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=["GET", "POST"],
            allow_headers=_CORS_HEADERS,
            expose_headers=_CORS_EXPOSED,
            max_age=_CORS_MAX_AGE_S,
        )


def admission_limits(settings: Settings, cores: int) -> AdmissionLimits:
    """The admission limits set, and the defaults of those left unset, on ``cores`` cores."""
    in_flight = settings.rank_max_in_flight or default_in_flight(
        settings.scoring_threads, settings.worker_processes, cores
    )
    queued = (
        settings.rank_max_queued
        if settings.rank_max_queued is not None
        else QUEUED_PER_SLOT * in_flight
    )
    objective_ms = settings.latency_objective_ms
    queue_timeout_ms = settings.rank_queue_timeout_ms or (
        objective_ms * QUEUE_TIMEOUT_SHARE_OF_OBJECTIVE
    )
    congested_timeout_ms = settings.rank_queue_congested_timeout_ms
    if congested_timeout_ms is None:
        congested_timeout_ms = objective_ms * CONGESTED_TIMEOUT_SHARE_OF_OBJECTIVE
    interval_ms = settings.rank_queue_congestion_interval_ms or (
        objective_ms * CONGESTION_INTERVAL_OBJECTIVES
    )
    limits = AdmissionLimits(
        max_in_flight=in_flight,
        max_queued=queued,
        queue_timeout_s=queue_timeout_ms / 1000.0,
        retry_after_s=settings.rank_retry_after_s,
        max_per_key=settings.rank_max_in_flight_per_key or default_per_key(in_flight),
        congested_timeout_s=congested_timeout_ms / 1000.0 if congested_timeout_ms else None,
        congestion_interval_s=interval_ms / 1000.0,
        slot_body_bytes=settings.rank_slot_body_bytes or None,
        congested_in_flight=min(
            in_flight,
            settings.rank_congested_max_in_flight or default_congested_in_flight(in_flight),
        ),
    )
    standing = (
        f"; a standing queue (told over {interval_ms:.0f} ms windows) admits up to "
        f"{limits.congested_in_flight} slots and serves the newest first for at most "
        f"{congested_timeout_ms:.0f} ms"
        if congested_timeout_ms
        else ""
    )
    weighing = (
        f"one per {limits.slot_body_bytes} bytes of body"
        if limits.slot_body_bytes
        else "one per request"
    )
    log.info(
        "rank admission: %d slots in flight (%s; %d per API key), %d queued for at most %.0f ms%s",
        limits.max_in_flight,
        weighing,
        limits.max_per_key,
        limits.max_queued,
        queue_timeout_ms,
        standing,
    )
    return limits
