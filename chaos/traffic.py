"""Steady open-loop rank traffic and a stream of admin event writes, both recorded per request.

Rank requests leave at fixed intervals whether or not earlier ones were answered, so a slow or
broken service shows as latency and failures rather than as a lower offered rate. Latency is
measured from the scheduled send time. Event batches carry event IDs; one that was not
acknowledged is sent again, as is, until it is (the service skips IDs it has already stored).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from enum import StrEnum

import aiohttp
import numpy as np

REQUEST_TIMEOUT_S = 5.0
RETRY_AFTER_S = 0.5


class Outcome(StrEnum):
    NORMAL = "normal"
    DEGRADED = "degraded"
    SHED = "shed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Answer:
    sent_s: float  # scheduled send time, seconds from the start of the run
    latency_ms: float
    outcome: Outcome
    bundle_version: str | None
    degraded: tuple[str, ...] = ()


@dataclass
class RankTraffic:
    """Sends rank bodies round robin at ``rate_rps`` until stopped."""

    url: str
    bodies: list[bytes]
    rate_rps: float
    origin: float  # time.monotonic() of the run's start
    answers: list[Answer] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=256, force_close=False)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        headers = {"content-type": "application/json"}
        pending: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            start = time.monotonic()
            n = 0
            while not self._stop.is_set():
                scheduled = start + n / self.rate_rps
                delay = scheduled - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                body = self.bodies[n % len(self.bodies)]
                task = asyncio.create_task(self._send(session, body, headers, scheduled))
                pending.add(task)
                task.add_done_callback(pending.discard)
                n += 1
            if pending:
                await asyncio.gather(*pending)

    async def _send(
        self,
        session: aiohttp.ClientSession,
        body: bytes,
        headers: dict[str, str],
        scheduled: float,
    ) -> None:
        version = None
        reasons: tuple[str, ...] = ()
        try:
            async with session.post(self.url, data=body, headers=headers) as response:
                payload = await response.json(content_type=None)
                if response.status == 200:
                    version = payload.get("bundle_version")
                    reasons = tuple(payload.get("degraded") or ())
                    outcome = Outcome.DEGRADED if reasons else Outcome.NORMAL
                elif response.status == 429:
                    outcome = Outcome.SHED
                else:
                    outcome = Outcome.FAILED
        except (aiohttp.ClientError, TimeoutError, ValueError):
            outcome = Outcome.FAILED
        latency_ms = (time.monotonic() - scheduled) * 1000.0
        self.answers.append(Answer(scheduled - self.origin, latency_ms, outcome, version, reasons))


@dataclass(frozen=True, slots=True)
class Event:
    user_id: str
    event_id: str
    item_id: str
    ts: int


@dataclass
class EventWriter:
    """Appends one event per request at ``rate_rps`` through the admin endpoint, retrying each
    unacknowledged one with the same event ID."""

    base_url: str
    admin_key: str
    users: list[str]
    items: list[str]
    rate_rps: float
    seed: int = 0
    acknowledged: list[Event] = field(default_factory=list)
    attempts: int = 0
    refused: int = 0
    _retry: list[Event] = field(default_factory=list)
    _retried_at: float = 0.0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self) -> None:
        self._stop.set()

    @property
    def unacknowledged(self) -> int:
        return len(self._retry)

    async def run(self, drain_s: float = 30.0) -> None:
        rng = np.random.default_rng(self.seed)
        headers = {"X-API-Key": self.admin_key}
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
            n = 0
            while not self._stop.is_set():
                event = Event(
                    user_id=self.users[n % len(self.users)],
                    event_id=f"chaos-{n}",
                    item_id=self.items[int(rng.integers(len(self.items)))],
                    ts=int(time.time()),
                )
                await self._write(session, event)
                n += 1
                await self._retry_due(session)
                await asyncio.sleep(1.0 / self.rate_rps)
            deadline = time.monotonic() + drain_s
            while self._retry and time.monotonic() < deadline:
                await asyncio.sleep(RETRY_AFTER_S)
                await self._retry_due(session)

    async def _retry_due(self, session: aiohttp.ClientSession) -> None:
        if time.monotonic() - self._retried_at < RETRY_AFTER_S:
            return
        self._retried_at = time.monotonic()
        due, self._retry = self._retry, []
        for event in due:
            await self._write(session, event)

    async def _write(self, session: aiohttp.ClientSession, event: Event) -> None:
        self.attempts += 1
        body = {
            "events": [
                {"item_id": event.item_id, "event": "click", "ts": event.ts,
                 "event_id": event.event_id}
            ]
        }  # fmt: skip
        url = f"{self.base_url}/v1/admin/users/{event.user_id}/events"
        try:
            async with session.post(url, json=body) as response:
                if response.status == 200:
                    answer = await response.json()
                    if answer["appended"] + answer["duplicates"] == 1:
                        self.acknowledged.append(event)
                        return
                self.refused += 1
        except (aiohttp.ClientError, TimeoutError, ValueError):
            self.refused += 1
        self._retry.append(event)
