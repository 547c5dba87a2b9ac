"""The ASGI middleware around every HTTP request: request ID, metrics, access log.

One middleware rather than several keeps the per-request cost to one wrapper, and lets the
access log and the metrics agree on the same status and duration. With tracing on it runs inside
the request's server span (opened by the tracer's instrumentation, outside every middleware), so
the access log line carries the trace ID and the span the request ID.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import ServiceError
from service.http.errors import error_response
from service.observability.logs import current_request_id, request_id_from
from service.observability.metrics import ServiceMetrics
from service.observability.tracing import StageTracer

access_log = logging.getLogger("service.access")
log = logging.getLogger(__name__)

UNMATCHED_ROUTE = "unmatched"


class ObservabilityMiddleware:
    """Takes the request ID from ``X-Request-ID`` (or makes one), echoes it on the response,
    makes it current for every log line of the request, and records the request under its route
    template (never its raw path, which carries user IDs)."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: ServiceMetrics,
        tracer: StageTracer,
        access_log_enabled: bool = True,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.tracer = tracer
        self.access_log_enabled = access_log_enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(Headers(scope=scope).get("x-request-id"))
        token = current_request_id.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        self.metrics.in_flight.inc()
        self.tracer.annotate({"reaseq.request_id": request_id})
        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            raise
        finally:
            self.metrics.in_flight.dec()
            self._record(scope, status, time.perf_counter() - started)
            current_request_id.reset(token)

    def _record(self, scope: Scope, status: int, elapsed_s: float) -> None:
        route = _route(scope)
        self.metrics.requests.labels(route=route, status=str(status)).inc()
        self.metrics.duration.labels(route=route).observe(elapsed_s)
        if self.access_log_enabled:
            access_log.log(
                _access_level(status),
                "%s %s %d",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(elapsed_s * 1000.0, 3),
                },
            )


def _access_level(status: int) -> int:
    if status == 500:
        return logging.ERROR
    return logging.WARNING if status >= 500 else logging.INFO


def _route(scope: Scope) -> str:
    return getattr(scope.get("route"), "path", UNMATCHED_ROUTE)


@dataclass(frozen=True)
class RouteLabel:
    """Stands in for the route of a request that a middleware answers before routing."""

    path: str


def label_route(scope: Scope, literal_paths: Collection[str]) -> None:
    """Count and log a request answered before routing (a 413, a 429) under its route rather
    than as unmatched, when its path is one of ``literal_paths`` (routes without parameters)."""
    if scope["path"] in literal_paths:
        scope["route"] = RouteLabel(scope["path"])


async def answer_and_close(error: ServiceError, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer ``error`` and have the server close the connection: for answers given before the
    body was read in full, whose rest the server would otherwise go on reading."""
    response = error_response(error)
    response.headers["Connection"] = "close"
    await response(scope, receive, send)
