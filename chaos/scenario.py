"""The chaos scenario: steady load and event writes while faults are injected one after another.

Phases, each ending with a quiet observation period: ``baseline``; ``redis_outage`` (Redis
killed, down for a while, restarted on its append-only file); ``worker_kill`` (one of the two
workers SIGKILLed; uvicorn's supervisor starts another); ``bundle_activation`` (the second
version activated through the admin endpoint; the other worker follows the pointer in Redis);
``corrupt_bundle`` (a copy with a flipped byte offered through the admin endpoint and then
through the pointer; both refused); ``cool_down``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import orjson

from chaos.bundles import ChaosBundles
from chaos.stack import RedisServer, Service
from chaos.traffic import EventWriter, RankTraffic
from service.contracts import keys

ADMIN_KEY = "chaos-admin-key"


@dataclass(frozen=True)
class Timing:
    """Seconds of each part of the scenario."""

    baseline: float = 15.0
    redis_down: float = 10.0
    observe: float = 20.0
    corrupt_pointer: float = 4.0
    cool_down: float = 5.0

    @classmethod
    def quick(cls) -> Timing:
        return cls(baseline=3.0, redis_down=4.0, observe=6.0, corrupt_pointer=2.0, cool_down=2.0)


@dataclass
class Phase:
    name: str
    start_s: float
    cleared_s: float = 0.0
    end_s: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Load:
    rate_rps: float = 40.0
    candidates: int = 100
    top_k: int = 20
    events_rps: float = 10.0
    event_users: int = 300
    seed: int = 0


def rank_bodies(users: list[str], items: list[str], load: Load, count: int = 2000) -> list[bytes]:
    rng = np.random.default_rng(load.seed)
    bodies = []
    for _ in range(count):
        candidates = rng.choice(len(items), load.candidates, replace=False)
        body = {
            "user_id": users[int(rng.integers(len(users)))],
            "candidates": [items[c] for c in candidates],
            "top_k": load.top_k,
        }
        bodies.append(orjson.dumps(body))
    return bodies


class Scenario:
    def __init__(
        self,
        redis: RedisServer,
        service: Service,
        bundles: ChaosBundles,
        timing: Timing,
        rank: RankTraffic,
        events: EventWriter,
    ) -> None:
        self.redis = redis
        self.service = service
        self.bundles = bundles
        self.timing = timing
        self.rank = rank
        self.events = events
        self.phases: list[Phase] = []
        self._origin = rank.origin

    def _now(self) -> float:
        return time.monotonic() - self._origin

    def _begin(self, name: str) -> Phase:
        if self.phases:
            self.phases[-1].end_s = self._now()
        phase = Phase(name, self._now())
        phase.cleared_s = phase.start_s
        self.phases.append(phase)
        return phase

    async def run(self) -> None:
        load = asyncio.gather(self.rank.run(), self.events.run())
        try:
            await self._faults()
        finally:
            self.phases[-1].end_s = self._now()
            self.rank.stop()
            self.events.stop()
            await load

    async def _faults(self) -> None:
        timing = self.timing
        self._begin("baseline")
        await asyncio.sleep(timing.baseline)

        phase = self._begin("redis_outage")
        await asyncio.to_thread(self.redis.kill)
        await asyncio.sleep(timing.redis_down)
        await asyncio.to_thread(self.redis.start)
        phase.cleared_s = self._now()
        phase.notes["down_s"] = round(phase.cleared_s - phase.start_s, 2)
        await asyncio.sleep(timing.observe)

        phase = self._begin("worker_kill")
        before = self.service.worker_pids()
        killed = await asyncio.to_thread(self.service.kill_worker)
        phase.notes["killed_pid"] = killed
        phase.notes["worker_respawned_after_s"] = await self._worker_respawned(before, killed)
        await asyncio.sleep(max(0.0, timing.observe - (self._now() - phase.start_s)))

        phase = self._begin("bundle_activation")
        answer = await self._admin("/v1/admin/bundle/activate", {"version": self.bundles.second})
        phase.cleared_s = self._now()
        phase.notes["activation"] = answer
        await asyncio.sleep(timing.observe)

        phase = self._begin("corrupt_bundle")
        answer = await self._admin("/v1/admin/bundle/activate", {"version": self.bundles.corrupt})
        phase.notes["admin_activation"] = answer
        await asyncio.to_thread(self._point, self.bundles.corrupt)
        await asyncio.sleep(timing.corrupt_pointer)
        await asyncio.to_thread(self._point, self.bundles.second)
        phase.notes["pointer"] = f"{self.bundles.corrupt} for {timing.corrupt_pointer:.0f} s"
        await asyncio.sleep(max(0.0, timing.observe - timing.corrupt_pointer))

        self._begin("cool_down")
        await asyncio.sleep(timing.cool_down)

    async def _worker_respawned(self, before: list[int], killed: int) -> float | None:
        """Seconds until the supervisor has as many worker processes again, one of them new."""
        started = time.monotonic()
        while time.monotonic() - started < self.timing.observe:
            pids = self.service.worker_pids()
            if len(pids) == len(before) and killed not in pids:
                return round(time.monotonic() - started, 2)
            await asyncio.sleep(0.1)
        return None

    async def _admin(self, path: str, body: dict[str, str]) -> dict[str, Any]:
        def post() -> dict[str, Any]:
            response = httpx.post(
                f"{self.service.url}{path}",
                json=body,
                headers={"X-API-Key": ADMIN_KEY},
                timeout=120,
            )
            return {"status": response.status_code, "body": response.json()}

        return await asyncio.to_thread(post)

    def _point(self, version: str) -> None:
        with self.redis.client() as client:
            client.set(keys.ACTIVE_BUNDLE, version)


def scrape(url: str, prefixes: tuple[str, ...]) -> dict[str, float]:
    """The samples of ``/metrics`` whose names start with one of ``prefixes``."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    samples = {}
    for line in text.splitlines():
        if line.startswith(prefixes):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples
