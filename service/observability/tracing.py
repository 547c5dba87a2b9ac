"""Optional OpenTelemetry tracing of requests and their ranking stages, off by default.

Metrics say *that* the fetch got slow; a trace says *which* request and how its time split.
The OpenTelemetry packages are an optional extra (``tracing``): with tracing off nothing of them
is imported and a span costs one ``nullcontext``. With tracing on and the packages missing, the
service refuses to start rather than silently serving without the traces an operator asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Literal, Protocol

log = logging.getLogger(__name__)

TracingExporter = Literal["otlp", "console"]
_INSTALL_HINT = "install the tracing extra: pip install 'reaseq-ranking[tracing]'"
_TRACER_NAME = "reaseq.service"


class TracingUnavailable(RuntimeError):
    """Tracing was asked for and cannot work: a start-up error, with what to install."""


class StageTracer(Protocol):
    """Opens spans; the service calls it at each request and each ranking stage."""

    def span(
        self, name: str, attributes: Mapping[str, Any] | None = None
    ) -> AbstractContextManager[None]:
        """A child span of the current one, current while the block runs."""

    def server_span(
        self, name: str, headers: Mapping[str, str]
    ) -> AbstractContextManager[dict[str, Any]]:
        """The root span of one HTTP request, continuing a caller's ``traceparent``; the
        attributes put in the yielded dict are set on the span when the block ends."""


class NoTracer:
    """Tracing off: spans are free."""

    def span(
        self, name: str, attributes: Mapping[str, Any] | None = None
    ) -> AbstractContextManager[None]:
        return nullcontext()

    def server_span(
        self, name: str, headers: Mapping[str, str]
    ) -> AbstractContextManager[dict[str, Any]]:
        return nullcontext({})


class OpenTelemetryTracer:
    """Spans through the OpenTelemetry API on the process's tracer provider."""

    def __init__(self) -> None:
        from opentelemetry import propagate, trace

        self._trace = trace
        self._propagate = propagate
        self._tracer = trace.get_tracer(_TRACER_NAME)

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[None]:
        with self._tracer.start_as_current_span(name, attributes=dict(attributes or {})):
            yield

    @contextmanager
    def server_span(self, name: str, headers: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        parent = self._propagate.extract(dict(headers))
        attributes: dict[str, Any] = {}
        with self._tracer.start_as_current_span(
            name, context=parent, kind=self._trace.SpanKind.SERVER
        ) as span:
            try:
                yield attributes
            finally:
                span.set_attributes(attributes)


def check_tracing_available(enabled: bool, exporter: TracingExporter) -> None:
    """Raise :class:`TracingUnavailable` now if tracing is on and cannot work, so that a
    supervisor process fails before it starts workers that would each fail."""
    if not enabled:
        return
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError as error:
        raise TracingUnavailable(
            f"tracing is on (REASEQ_TRACING_ENABLED) but OpenTelemetry is missing ({error}): "
            + _INSTALL_HINT
        ) from error
    _span_exporter_class(exporter)


def load_tracer(enabled: bool, exporter: TracingExporter, service_name: str) -> StageTracer:
    """The tracer the settings ask for; raises :class:`TracingUnavailable` when it cannot be."""
    if not enabled:
        return NoTracer()
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as error:
        raise TracingUnavailable(
            f"tracing is on (REASEQ_TRACING_ENABLED) but OpenTelemetry is missing ({error}): "
            + _INSTALL_HINT
        ) from error
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        # Already configured by the host (opentelemetry-instrument, a test): keep its exporters.
        return OpenTelemetryTracer()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(_span_exporter(exporter)))
    trace.set_tracer_provider(provider)
    log.info("tracing on: spans exported with %s", exporter)
    return OpenTelemetryTracer()


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
