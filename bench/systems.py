"""The systems one bench run compares, how each is started, what each costs in CPU, and the
score parity checked before any of them is timed.

Every system serves the same request bodies over HTTP on loopback: ``POST /v1/rank`` answering
``{"items": [{"item_id", "score"}, ...]}`` and ``GET /readyz``. CPU time is read from ``/proc``
(psutil) for the whole process tree a system was started as, so a system made of several
processes (workers, a proxy, a scheduler) pays for all of them.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import aiohttp
import psutil

from bench.fixture import BenchFixture

SERVICE, SERVICE_SELF_ATTENTION, BASELINE, RAY_SERVE = (
    "service",
    "service_self_attention",
    "baseline",
    "ray_serve",
)
#: Scores of another system may differ from the service's by this much (float32 arithmetic in
#: another order); more means it does other work, and it is not timed.
PARITY_TOLERANCE = 1e-4
PARITY_REQUESTS = 16


@dataclass(frozen=True)
class System:
    """One system under test: its start command (the bench appends ``--port N``), its extra
    environment, where its ladder starts per workload, and what else is measured on it."""

    name: str
    description: str
    #: The bundle, users and request bodies it serves.
    fixture: BenchFixture
    command: list[str]
    env: dict[str, str]
    start_rps: dict[str, float]
    #: Same bundle as the service (its scores must match the service's before timing).
    same_bundle: bool = True
    #: Stage times from the service's own /metrics at each rate.
    scrape: bool = False
    #: Takes the session measurement (later pages of a user hit the per-user cache).
    session: bool = False
    settings: dict[str, object] = field(default_factory=dict)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and every process below it, as of now (a child that
    already exited is no longer counted: its time went with it)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def _scores(url: str, bodies: list[bytes]) -> list[dict[str, float]]:
    found = []
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession() as session:
        for body in bodies:
            async with session.post(f"{url}/v1/rank", data=body, headers=headers) as response:
                response.raise_for_status()
                answer = json.loads(await response.read())
            found.append({item["item_id"]: float(item["score"]) for item in answer["items"]})
    return found


def answers(url: str, bodies: list[bytes]) -> list[dict[str, float]]:
    """Each body's scores by item, one request at a time."""
    return asyncio.run(_scores(url, bodies))


def max_score_difference(ours: list[dict[str, float]], theirs: list[dict[str, float]]) -> float:
    """The largest score difference over every item of every request; infinite when a request
    is answered with other items."""
    worst = 0.0
    for mine, other in zip(ours, theirs, strict=True):
        if mine.keys() != other.keys():
            return float("inf")
        worst = max(worst, max((abs(mine[k] - other[k]) for k in mine), default=0.0))
    return worst


def parity_bodies(bodies: list[bytes]) -> list[bytes]:
    """The first requests of a workload, every candidate scored (no ``top_k``)."""
    chosen = []
    for raw in bodies[:PARITY_REQUESTS]:
        body = json.loads(raw)
        body.pop("top_k", None)
        chosen.append(json.dumps(body).encode())
    return chosen
