"""What the experiment tests share: the app with its runtime in reach, experiment bodies, the
prediction log's records read back, and a gate that holds a bundle's rankings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from service.experiments.records import LOG_FILE_GLOB
from service.ranking import Ranking, RankingPipeline, RankQuery
from service.runtime import ServiceRuntime
from tests.support.serving import ADMIN_KEY

ADMIN = {"X-API-Key": ADMIN_KEY}
#: The bundle versions under the experiment tests' bundle root (``test-1`` is CURRENT).
VERSIONS = ("test-1", "test-2")
EXPERIMENT_PATH = "/v1/admin/experiment"

#: The metric families exported only while an experiment runs (each has a dashboard panel).
EXPERIMENT_METRICS = frozenset(
    {
        "reaseq_arm_requests_total",
        "reaseq_arm_request_duration_seconds_bucket",
        "reaseq_arm_degraded_total",
        "reaseq_arm_score_bucket",
        "reaseq_shadow_dropped_total",
        "reaseq_shadow_errors_total",
        "reaseq_experiment_bundle_memory_bytes",
    }
)


@dataclass(frozen=True)
class ServedApp:
    """The app, started, behind an ASGI client."""

    app: FastAPI
    client: httpx.AsyncClient

    @property
    def runtime(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.app.state.runtime
        return runtime

    async def start(self, body: dict[str, Any]) -> httpx.Response:
        return await self.client.put(EXPERIMENT_PATH, json=body, headers=ADMIN)

    async def shown(self) -> dict[str, Any]:
        answer = await self.client.get(EXPERIMENT_PATH, headers=ADMIN)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def rank(self, user_id: str, **fields: Any) -> httpx.Response:
        body = {"user_id": user_id, "candidates": ["i1", "i3", "i5", "i9"]} | fields
        return await self.client.post("/v1/rank", json=body)


#: ``async with serving_app(**settings) as served``.
ServingApp = Callable[..., AbstractAsyncContextManager[ServedApp]]


def experiment(
    name: str = "ranker-ab",
    version: int = 1,
    arms: tuple[tuple[str, str, float], ...] = (("control", "test-1", 0.5), ("new", "test-2", 0.5)),
    **fields: Any,
) -> dict[str, Any]:
    """The body of ``PUT /v1/admin/experiment``: arms as (name, bundle, share)."""
    body = {
        "name": name,
        "version": version,
        "arms": [{"name": n, "bundle": b, "share": s} for n, b, s in arms],
    }
    return body | fields


def prediction_records(folder: Path) -> list[dict[str, Any]]:
    """Every record of the prediction log's files in ``folder``, oldest file first."""
    return [
        json.loads(line)
        for path in sorted(folder.glob(LOG_FILE_GLOB))
        for line in path.read_text().splitlines()
        if line
    ]


@dataclass
class GatedPipeline:
    """Stands in front of a bundle's real pipeline: each ranking waits for ``gate`` (set
    ``entered`` first), or fails at once with ``failure``, before the real pipeline ranks."""

    pipeline: RankingPipeline
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    failure: Exception | None = None
    calls: int = 0

    async def rank(self, query: RankQuery) -> Ranking:
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        self.entered.set()
        await self.gate.wait()
        return await self.pipeline.rank(query)
