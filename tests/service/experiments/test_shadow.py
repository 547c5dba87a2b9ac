"""Shadow arms: scored off the critical path, never changing or holding up the answer; a full
queue drops and counts, failures are counted and logged without flooding."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from service.observability.logs import JsonFormatter
from tests.support.experiments import (
    ADMIN,
    EXPERIMENT_PATH,
    GatedPipeline,
    ServedApp,
    ServingApp,
    experiment,
    prediction_records,
)
from tests.support.exposition import value
from tests.support.logs import captured_logs

pytestmark = pytest.mark.anyio
#: One arm on test-1 (the bundle served without an experiment), a shadow on test-2.
BODY = experiment(
    arms=(("control", "test-1", 1.0),), shadows=[{"name": "candidate", "bundle": "test-2"}]
)
SHADOW = {"experiment": "ranker-ab", "arm": "candidate"}
#: Guards against a hang only; nothing is asserted about how long anything takes.
HANG_GUARD_S = 30


def _ranked(answer: dict[str, Any]) -> list[tuple[str, float]]:
    return [(item["item_id"], item["score"]) for item in answer["items"]]


async def _gate_shadow(served: ServedApp) -> GatedPipeline:
    running = served.runtime.experiments.running
    assert running is not None
    shadow = running.bundles["test-2"].served
    gated = GatedPipeline(shadow.pipeline)
    shadow.pipeline = gated  # type: ignore[assignment]
    return gated


async def test_a_blocked_shadow_neither_holds_up_nor_changes_the_answer(
    serving_app: ServingApp, prediction_dir: Path
) -> None:
    async with serving_app() as served:
        plain = (await served.rank("u1")).json()
        await served.start(BODY)
        gated = await _gate_shadow(served)
        answer = (await asyncio.wait_for(served.rank("u1"), HANG_GUARD_S)).json()
        await asyncio.wait_for(gated.entered.wait(), HANG_GUARD_S)
        # The answer is in while the shadow's scoring of the same request is still blocked.
        assert not gated.gate.is_set()
        gated.gate.set()
        await asyncio.wait_for(served.runtime.experiments.shadows.join(), HANG_GUARD_S)
    assert (answer["arm"], answer["bundle_version"]) == ("control", "test-1")
    assert _ranked(answer) == _ranked(plain)
    records = prediction_records(prediction_dir)
    primary, shadow = sorted(records, key=lambda record: record["shadow"])
    assert primary["request_id"] == shadow["request_id"] == answer["request_id"]
    assert (primary["arm"], primary["shadow"], primary["bundle_version"]) == (
        "control",
        False,
        "test-1",
    )
    assert (shadow["arm"], shadow["shadow"], shadow["bundle_version"]) == (
        "candidate",
        True,
        "test-2",
    )
    assert shadow["items"] == primary["items"], "test-2 ranks as test-1 does"


async def test_a_failing_shadow_is_counted_and_logged_once(serving_app: ServingApp) -> None:
    with captured_logs(JsonFormatter()) as stream:
        async with serving_app() as served:
            plain = (await served.rank("u1")).json()
            await served.start(BODY)
            gated = await _gate_shadow(served)
            gated.failure = RuntimeError("the shadow bundle broke")
            answers = [await served.rank("u1") for _ in range(3)]
            await asyncio.wait_for(served.runtime.experiments.shadows.join(), HANG_GUARD_S)
            metrics = (await served.client.get("/metrics")).text
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert all(_ranked(answer.json()) == _ranked(plain) for answer in answers)
    assert gated.calls == 3
    assert value(metrics, "reaseq_shadow_errors_total", **SHADOW) == 3
    assert value(metrics, "reaseq_shadow_dropped_total", **SHADOW) == 0
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    failures = [line for line in lines if "the shadow bundle broke" in line["message"]]
    assert len(failures) == 1, "one line per minute and arm, not one per failure"
    assert "exception" not in failures[0]
    assert (failures[0]["arm"], failures[0]["shadow"]) == ("candidate", True)
    assert failures[0]["request_id"] == answers[0].json()["request_id"]


async def test_a_full_queue_drops_and_counts(serving_app: ServingApp, prediction_dir: Path) -> None:
    async with serving_app(shadow_queue_size=1) as served:
        await served.start(BODY)
        gated = await _gate_shadow(served)
        first = await served.rank("u1")
        await asyncio.wait_for(gated.entered.wait(), HANG_GUARD_S)
        # The worker holds the first job; one more fits the queue, four are dropped.
        rest = [await served.rank(f"u{n}") for n in range(5)]
        metrics = (await served.client.get("/metrics")).text
        gated.gate.set()
        await asyncio.wait_for(served.runtime.experiments.shadows.join(), HANG_GUARD_S)
    assert {answer.status_code for answer in [first, *rest]} == {200}
    assert value(metrics, "reaseq_shadow_dropped_total", **SHADOW) == 4
    shadows = [record for record in prediction_records(prediction_dir) if record["shadow"]]
    assert len(shadows) == 2
    assert value(metrics, "reaseq_arm_requests_total", experiment="ranker-ab", arm="control") == 6


async def test_a_stopped_experiment_skips_its_queued_shadow_jobs(
    serving_app: ServingApp, prediction_dir: Path
) -> None:
    async with serving_app() as served:
        await served.start(BODY)
        gated = await _gate_shadow(served)
        await served.rank("u1")
        await asyncio.wait_for(gated.entered.wait(), HANG_GUARD_S)
        for n in range(2):
            await served.rank(f"u{n}")
        stopped = await served.client.delete(EXPERIMENT_PATH, headers=ADMIN)
        gated.gate.set()
        await asyncio.wait_for(served.runtime.experiments.shadows.join(), HANG_GUARD_S)
    assert stopped.status_code == 200
    shadows = [record for record in prediction_records(prediction_dir) if record["shadow"]]
    # The scoring in progress finished on its bundle (retired after it); the queued two not.
    assert len(shadows) == 1
    assert gated.calls == 1
