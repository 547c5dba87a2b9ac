"""What stands between a caller and the routes: body limits, load shedding, CORS, API keys.

Middleware runs outermost first: CORS (so a browser can read even a 413 or a 429), then
admission to ``/v1/rank`` (before the body is read, so shedding is cheap), then the body limit.
API keys and the request limits are checked by the routes, with what this installs on
``app.state``.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from service.http.admission import AdmissionControl, AdmissionLimits, AdmissionMiddleware
from service.http.body_limit import RequestBodyLimit
from service.observability.metrics import ServiceMetrics
from service.settings import Settings

#: The routes whose requests wait for admission; health, metrics and admin never do.
ADMITTED_PATHS = frozenset({"/v1/rank"})
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
    app.add_middleware(
        RequestBodyLimit,
        max_bytes=settings.max_body_bytes,
        read_timeout_s=settings.body_read_timeout_ms / 1000.0,
        labelled_paths=ADMITTED_PATHS,
    )
    limits = AdmissionLimits(
        max_in_flight=settings.rank_max_in_flight,
        max_queued=settings.rank_max_queued,
        queue_timeout_s=settings.rank_queue_timeout_ms / 1000.0,
        retry_after_s=settings.rank_retry_after_s,
    )
    control = AdmissionControl(limits, metrics.rank_in_flight, metrics.rank_queued)
    app.add_middleware(
        AdmissionMiddleware,
        control=control,
        paths=ADMITTED_PATHS,
        shed=metrics.rank_shed,
    )
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=["GET", "POST"],
            allow_headers=_CORS_HEADERS,
            expose_headers=_CORS_EXPOSED,
            max_age=_CORS_MAX_AGE_S,
        )
