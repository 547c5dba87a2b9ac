"""OpenTelemetry tracing: a server span per request with a child span per ranking stage."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.serving import Serving

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    """Spans kept in memory; the process's provider can be set only once, so reuse it."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    exporter.clear()
    yield exporter
    exporter.clear()


@pytest.mark.anyio
async def test_stage_spans_are_children_of_the_request_span(
    serving: Serving, spans: InMemorySpanExporter
) -> None:
    async with serving(tracing_enabled=True) as client:
        response = await client.post(
            "/v1/rank",
            json={"user_id": "u1", "candidates": ["i1", "i3"]},
            headers={"traceparent": TRACEPARENT, "X-Request-ID": "traced"},
        )
    assert response.status_code == 200
    finished = spans.get_finished_spans()
    by_name = {span.name: span for span in finished}
    by_id = {span.context.span_id: span for span in finished}
    root = by_name["HTTP POST"]
    assert root.kind is trace.SpanKind.SERVER
    assert f"{root.context.trace_id:032x}" == TRACE_ID, "the caller's trace continues"
    assert root.attributes is not None
    assert root.attributes["http.route"] == "/v1/rank"
    assert root.attributes["http.response.status_code"] == 200
    assert root.attributes["reaseq.request_id"] == "traced"
    stages = {
        "rank.fetch",
        "rank.user_encoder",
        "rank.candidate_encoder",
        "rank.attention",
        "rank.scorer",
        "rank.serialisation",
    }
    assert stages <= set(by_name)
    for name in stages:
        # FastAPI may add its own spans in between: walk up to the request span.
        ancestors = []
        span = by_name[name]
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            ancestors.append(span.name)
        assert ancestors and ancestors[-1] == "HTTP POST", (name, ancestors)


@pytest.mark.anyio
async def test_tracing_off_records_nothing(serving: Serving, spans: InMemorySpanExporter) -> None:
    async with serving() as client:
        await client.post("/v1/rank", json={"user_id": "u1", "candidates": ["i1"]})
    # FastAPI traces itself whenever a provider is set; the service adds nothing of its own.
    ours = [s.name for s in spans.get_finished_spans() if s.name.startswith(("rank.", "HTTP "))]
    assert ours == []


def test_tracing_on_without_opentelemetry_refuses_to_start() -> None:
    code = (
        "import sys\n"
        # As if the tracing extra were not installed (FastAPI itself brings opentelemetry-api).
        "sys.modules['opentelemetry.sdk'] = None\n"
        "from service.app import create_app\n"
        "from service.settings import Settings\n"
        "create_app(Settings(tracing_enabled=True))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "TracingUnavailable" in done.stderr
    assert "pip install 'reaseq-ranking[tracing]'" in done.stderr
