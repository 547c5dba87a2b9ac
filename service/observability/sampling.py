"""Which spans the service's own tracer provider keeps: traces start at requests.

Imported only with tracing on (it needs the OpenTelemetry SDK of the ``tracing`` extra).
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes


class RequestTraces(Sampler):
    """Drops a client span that would start a trace of its own (a Redis call outside any
    request: a readiness or scrape ping, the bundle watcher's poll, every few seconds per
    worker); anything else is left to ``delegate`` (the sampler the OTEL_TRACES_SAMPLER
    variables choose)."""

    def __init__(self, delegate: Sampler) -> None:
        self._delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = get_current_span(parent_context).get_span_context()
        if kind is SpanKind.CLIENT and not parent.is_valid:
            return SamplingResult(Decision.DROP)
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"RequestTraces{{{self._delegate.get_description()}}}"
