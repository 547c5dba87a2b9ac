"""OpenTelemetry tracing: a server span per request (the FastAPI instrumentation's) with a child
span per ranking stage, a client span per Redis call, and the trace ID on the request's logs."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

from service.bundles.loaded import LoadedBundle
from service.observability.logs import JsonFormatter
from service.observability.sampling import RequestTraces
from tests.support.logs import captured_logs
from tests.support.serving import Serving
from tests.support.users import DemoUsers, write_redis

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
RANK_SPAN = "POST /v1/rank"
STAGES = {
    "rank.fetch",
    "rank.user_encoder",
    "rank.candidate_encoder",
    "rank.attention",
    "rank.scorer",
    "rank.serialisation",
}
#: Instrumentation scopes of the spans the service makes (its own and the instrumentations').
OUR_SCOPES = ("reaseq.", "opentelemetry.instrumentation.")


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Every log record of the test, formatted as the service formats it."""
    with captured_logs(JsonFormatter()) as stream:
        yield stream


def _ancestors(span: ReadableSpan, finished: list[ReadableSpan]) -> list[str]:
    """Names of the span's recorded ancestors, nearest first."""
    by_id = {s.context.span_id: s for s in finished}
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


def _server_spans(finished: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in finished if s.kind is trace.SpanKind.SERVER]


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
    finished = list(spans.get_finished_spans())
    servers = _server_spans(finished)
    assert [s.name for s in servers] == [RANK_SPAN], "one server span per request"
    root = servers[0]
    assert root.instrumentation_scope is not None
    assert root.instrumentation_scope.name == "opentelemetry.instrumentation.fastapi"
    assert f"{root.context.trace_id:032x}" == TRACE_ID, "the caller's trace continues"
    assert root.attributes is not None
    assert root.attributes["http.route"] == "/v1/rank"
    # The attribute's name depends on OTEL_SEMCONV_STABILITY_OPT_IN.
    statuses = {root.attributes.get(k) for k in ("http.status_code", "http.response.status_code")}
    assert 200 in statuses
    assert root.attributes["reaseq.request_id"] == "traced"
    by_name = {span.name: span for span in finished}
    assert set(by_name) >= STAGES
    for name in STAGES:
        ancestors = _ancestors(by_name[name], finished)
        assert ancestors and ancestors[-1] == RANK_SPAN, (name, ancestors)
    assert not [s.name for s in finished if s.name.endswith(("http receive", "http send"))]


@pytest.mark.anyio
async def test_a_redis_call_is_a_client_span_of_the_request(
    serving: Serving,
    spans: InMemorySpanExporter,
    redis_url: str,
    bundle: LoadedBundle,
    users: DemoUsers,
) -> None:
    write_redis(redis_url, bundle, users)
    async with serving(tracing_enabled=True, store="redis", redis_url=redis_url) as client:
        spans.clear()  # start-up reads the store too; keep the request's spans only
        response = await client.post("/v1/rank", json={"user_id": "u1", "candidates": ["i1"]})
    assert response.status_code == 200
    finished = list(spans.get_finished_spans())
    calls = [
        s
        for s in finished
        if s.kind is trace.SpanKind.CLIENT and (s.attributes or {}).get("db.system") == "redis"
    ]
    assert calls, [s.name for s in finished]
    fetch = [c for c in calls if "rank.fetch" in _ancestors(c, finished)]
    assert fetch, "the store fetch's pipeline is traced under the fetch stage"
    assert _ancestors(fetch[0], finished)[-1] == RANK_SPAN
    # Commands are recorded without their arguments: no key, so no user ID, leaves the process.
    for call in calls:
        assert "u1" not in json.dumps(dict(call.attributes or {}))


@pytest.mark.anyio
async def test_log_lines_of_a_request_carry_its_trace_id(
    serving: Serving, spans: InMemorySpanExporter, json_logs: io.StringIO
) -> None:
    async with serving(tracing_enabled=True) as client:
        await client.post(
            "/v1/rank",
            json={"user_id": "u1", "candidates": ["i1"]},
            headers={"traceparent": TRACEPARENT, "X-Request-ID": "logged"},
        )
    entries = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    access = [e for e in entries if e["logger"] == "service.access"]
    assert len(access) == 1
    assert access[0]["request_id"] == "logged"
    assert access[0]["trace_id"] == TRACE_ID
    root = _server_spans(list(spans.get_finished_spans()))[0]
    assert access[0]["span_id"] == f"{root.context.span_id:016x}"
    startup = [e for e in entries if e["message"] == "starting"]
    assert startup and "trace_id" not in startup[0], "outside a request, no trace"


def test_the_formatter_adds_the_current_span() -> None:
    formatter = JsonFormatter()
    record = logging.getLogger("t").makeRecord("t", logging.INFO, __file__, 1, "m", (), None)
    assert "trace_id" not in json.loads(formatter.format(record))
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        entry = json.loads(formatter.format(record))
    assert entry["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    assert entry["span_id"] == f"{span.get_span_context().span_id:016x}"


def test_a_client_call_outside_a_request_starts_no_trace() -> None:
    """The service's own provider keeps Redis calls of requests, not those of its pings and
    polls; the rest is the configured sampler's call."""
    tracer = TracerProvider(sampler=RequestTraces(ALWAYS_ON)).get_tracer("test")
    client = trace.SpanKind.CLIENT
    with tracer.start_as_current_span("PING", kind=client) as alone:
        assert not alone.is_recording()
    with tracer.start_as_current_span("POST /v1/rank", kind=trace.SpanKind.SERVER) as request:
        assert request.is_recording()
        with tracer.start_as_current_span("PIPELINE", kind=client) as call:
            assert call.is_recording()
    with tracer.start_as_current_span("rank.fetch") as stage:
        assert stage.is_recording(), "a warm-up or probe request's stages are kept"
    dropping = TracerProvider(sampler=RequestTraces(ALWAYS_OFF)).get_tracer("test")
    with dropping.start_as_current_span("POST /v1/rank", kind=trace.SpanKind.SERVER) as request:
        assert not request.is_recording()


def test_the_service_provider_keeps_request_traces() -> None:
    code = (
        "from opentelemetry import trace\n"
        "from service.observability.tracing import load_tracer\n"
        "load_tracer(True, 'console', 'reaseq-test')\n"
        "print(trace.get_tracer_provider().sampler.get_description())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("RequestTraces{ParentBased"), done.stdout


@pytest.mark.anyio
async def test_probes_and_scrapes_are_not_traced(
    serving: Serving, spans: InMemorySpanExporter
) -> None:
    async with serving(tracing_enabled=True) as client:
        for path in ("/livez", "/readyz", "/metrics"):
            assert (await client.get(path)).status_code == 200
        await client.get("/v1/bundle")
    assert [s.name for s in _server_spans(list(spans.get_finished_spans()))] == ["GET /v1/bundle"]


@pytest.mark.anyio
async def test_tracing_off_records_nothing(serving: Serving, spans: InMemorySpanExporter) -> None:
    async with serving() as client:
        await client.post("/v1/rank", json={"user_id": "u1", "candidates": ["i1"]})
    # FastAPI traces itself whenever a provider is set; the service adds nothing of its own.
    ours = [
        s.name
        for s in spans.get_finished_spans()
        if s.instrumentation_scope is not None
        and s.instrumentation_scope.name.startswith(OUR_SCOPES)
    ]
    assert ours == []


@pytest.mark.parametrize("missing", ["opentelemetry.sdk", "opentelemetry.instrumentation.fastapi"])
def test_tracing_on_without_its_packages_refuses_to_start(missing: str) -> None:
    code = (
        "import sys\n"
        # As if the tracing extra were not installed (FastAPI itself brings opentelemetry-api).
        f"sys.modules[{missing!r}] = None\n"
        "from service.app import create_app\n"
        "from service.settings import Settings\n"
        "create_app(Settings(tracing_enabled=True))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "TracingUnavailable" in done.stderr
    assert missing in done.stderr
    assert "pip install 'reaseq-ranking[tracing]'" in done.stderr
