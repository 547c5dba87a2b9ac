"""Optional OpenTelemetry tracing of requests, their ranking stages and Redis calls, off by default.

Metrics say *that* the fetch got slow; a trace says *which* request and how its time split.
The server span of each HTTP request comes from OpenTelemetry's FastAPI instrumentation and every
Redis command or pipeline gets a client span from its Redis instrumentation; the ranking stages
are our own spans, children of the request's. The packages are an optional extra (``tracing``):
with tracing off nothing of them is imported and a span costs one ``nullcontext``. With tracing on
and the packages missing, the service refuses to start rather than silently serving without the
traces an operator asked for.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

TracingExporter = Literal["otlp", "console"]
_INSTALL_HINT = "install the tracing extra: pip install 'reaseq-ranking[tracing]'"
_TRACER_NAME = "reaseq.service"
#: Probes and scrapes, many a minute per replica, would bury the traces of real requests
#: (patterns the instrumentation searches in the request URL, comma-separated).
UNTRACED_PATHS = "/livez$,/readyz$,/metrics$"
#: The modules tracing needs, each with what it is for.
_REQUIRED_MODULES = {
    "opentelemetry.sdk.trace": "the SDK",
    "opentelemetry.instrumentation.fastapi": "the server span of each request",
    "opentelemetry.instrumentation.redis": "the spans of Redis calls",
}


class TracingUnavailable(RuntimeError):
    """Tracing was asked for and cannot work: a start-up error, with what to install."""


class StageTracer(Protocol):
    """Opens spans; the service calls it at each request and each ranking stage."""

    def span(
        self, name: str, attributes: Mapping[str, Any] | None = None
    ) -> AbstractContextManager[None]:
        """A child span of the current one, current while the block runs."""

    def instrument(self, app: FastAPI) -> None:
        """Open a server span around every HTTP request of ``app``, continuing a caller's
        ``traceparent``; call it before the app serves its first request."""

    def annotate(self, attributes: Mapping[str, Any]) -> None:
        """Set ``attributes`` on the current span (in the middleware: the request's)."""


class NoTracer:
    """Tracing off: spans are free."""

    def span(
        self, name: str, attributes: Mapping[str, Any] | None = None
    ) -> AbstractContextManager[None]:
        return nullcontext()

    def instrument(self, app: FastAPI) -> None:
        return None

    def annotate(self, attributes: Mapping[str, Any]) -> None:
        return None


class OpenTelemetryTracer:
    """Spans through the OpenTelemetry API on the process's tracer provider."""

    def __init__(self) -> None:
        from opentelemetry import trace

        self._trace = trace
        self._tracer = trace.get_tracer(_TRACER_NAME)

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[None]:
        with self._tracer.start_as_current_span(name, attributes=dict(attributes or {})):
            yield

    def instrument(self, app: FastAPI) -> None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        # `opentelemetry-instrument` may have instrumented every FastAPI app already.
        if getattr(app, "_is_instrumented_by_opentelemetry", False):
            return
        FastAPIInstrumentor.instrument_app(
            app,
            excluded_urls=UNTRACED_PATHS,
            # A span per ASGI message of the body adds nothing a request span does not show.
            exclude_spans=["receive", "send"],
        )

    def annotate(self, attributes: Mapping[str, Any]) -> None:
        span = self._trace.get_current_span()
        if span.is_recording():
            span.set_attributes(dict(attributes))


def current_span_ids() -> tuple[str, str] | None:
    """The trace ID and span ID (hex) of the span current here, for log lines; None outside a
    span. Nothing is imported: while no code has imported OpenTelemetry, no span can exist."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def check_tracing_available(enabled: bool, exporter: TracingExporter) -> None:
    """Raise :class:`TracingUnavailable` now if tracing is on and cannot work, so that a
    supervisor process fails before it starts workers that would each fail."""
    if not enabled:
        return
    _import_required()
    _span_exporter_class(exporter)


def load_tracer(enabled: bool, exporter: TracingExporter, service_name: str) -> StageTracer:
    """The tracer the settings ask for; raises :class:`TracingUnavailable` when it cannot be.

    With tracing on, Redis calls of the whole process are traced from here on.
    """
    if not enabled:
        return NoTracer()
    _import_required()
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from service.observability.sampling import RequestTraces

    # A provider set by the host (opentelemetry-instrument, a test) is kept with its exporters.
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        # Before any tracer is made from it: each tracer takes the provider's sampler.
        provider.sampler = RequestTraces(provider.sampler)
        provider.add_span_processor(BatchSpanProcessor(_span_exporter(exporter)))
        trace.set_tracer_provider(provider)
        log.info("tracing on: spans exported with %s", exporter)
    _instrument_redis()
    return OpenTelemetryTracer()


def _import_required() -> None:
    for module, purpose in _REQUIRED_MODULES.items():
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise TracingUnavailable(
                f"tracing is on (REASEQ_TRACING_ENABLED) but OpenTelemetry's {module} "
                f"({purpose}) is missing ({error}): " + _INSTALL_HINT
            ) from error


def _instrument_redis() -> None:
    """Trace every Redis client of the process (commands with their arguments replaced by
    ``?``); once, however many apps the process builds."""
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    instrumentor = RedisInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def _span_exporter(exporter: TracingExporter) -> Any:
    # The OTLP exporter reads its endpoint, headers and timeout from the standard
    # OTEL_EXPORTER_OTLP_* variables.
    return _span_exporter_class(exporter)()


def _span_exporter_class(exporter: TracingExporter) -> Any:
    if exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as error:
        raise TracingUnavailable(
            f"REASEQ_TRACING_EXPORTER=otlp needs the OTLP exporter ({error}): " + _INSTALL_HINT
        ) from error
    return OTLPSpanExporter
