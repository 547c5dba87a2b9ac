"""The server span of a rank request answered by an arm carries the experiment and the arm."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.support.experiments import ServingApp, experiment

pytestmark = pytest.mark.anyio


async def test_the_request_span_names_the_arm(
    serving_app: ServingApp, spans: InMemorySpanExporter
) -> None:
    async with serving_app(tracing_enabled=True) as served:
        await served.start(experiment(override_context_key="qa_arm"))
        spans.clear()
        forced = (await served.rank("u1", arm="new")).json()
        by_context = (await served.rank("u1", context={"qa_arm": "control"})).json()
        hashed = (await served.rank("u1")).json()
    servers = [s for s in spans.get_finished_spans() if s.kind is trace.SpanKind.SERVER]
    assert [s.name for s in servers] == ["POST /v1/rank"] * 3
    seen = [
        (
            s.attributes["reaseq.experiment"],
            s.attributes["reaseq.arm"],
            s.attributes["reaseq.arm_assigned_by"],
        )
        for s in servers
        if s.attributes is not None
    ]
    assert seen == [
        ("ranker-ab", forced["arm"], "request"),
        ("ranker-ab", by_context["arm"], "context"),
        ("ranker-ab", hashed["arm"], "hash"),
    ]
    assert (forced["arm"], by_context["arm"]) == ("new", "control")
