"""Open-loop load on loopback: Poisson arrivals at a fixed offered rate, for a bounded time.

Arrivals are drawn up front and each request is sent at its time whether or not earlier ones
have been answered (a closed loop would slow down with the server and hide its queueing). A
request unanswered ``grace_s`` after the last arrival counts as failed. Latency is from the
scheduled send time, so the generator's own lateness counts against the server, not for it.
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
from dataclasses import dataclass, field

import aiohttp
import numpy as np

_CONNECTIONS = 512
#: The ``Server-Timing`` part with the service's whole time for one request.
SERVER_PART = "server"


@dataclass(frozen=True)
class RateResult:
    offered_rps: float
    sent: int
    ok: int
    failed: int
    duration_s: float
    latencies_ms: list[float]  # of the answered requests
    shed: int = 0  # of the failed: answered 429 (load shedding)
    shed_latencies_ms: list[float] = field(default_factory=list)  # of the 429 answers
    #: How late the generator sent each request after its scheduled time (its own lag).
    send_lag_ms: list[float] = field(default_factory=list)
    #: Per answered request: ``client`` and ``send_lag`` ms and the server's Server-Timing parts.
    breakdowns: list[dict[str, float]] = field(default_factory=list)

    @property
    def achieved_rps(self) -> float:
        return self.ok / self.duration_s if self.duration_s else 0.0

    def percentile(self, q: float) -> float:
        """Over every request sent; a failed one counts as infinitely slow."""
        if not self.sent:
            return math.nan
        values = sorted(self.latencies_ms) + [math.inf] * self.failed
        return float(np.percentile(values, q, method="higher"))

    def summary(self) -> dict[str, float | int | None]:
        return {
            "offered_rps": round(self.offered_rps, 2),
            "achieved_rps": round(self.achieved_rps, 2),
            "sent": self.sent,
            "ok": self.ok,
            "failed": self.failed,
            "p50_ms": _finite(self.percentile(50)),
            "p95_ms": _finite(self.percentile(95)),
            "p99_ms": _finite(self.percentile(99)),
            "shed": self.shed,
            "send_lag_p99_ms": _finite(self.lag_percentile(99)),
        }

    def accepted_percentile(self, q: float) -> float:
        """Over the requests answered 200 only (what load shedding protects)."""
        return _percentile(self.latencies_ms, q)

    def shed_percentile(self, q: float) -> float:
        """Over the 429 answers: how fast a shed request learns it was shed."""
        return _percentile(self.shed_latencies_ms, q)

    def lag_percentile(self, q: float) -> float:
        """Over every request: how late the load generator itself sent it."""
        return _percentile(self.send_lag_ms, q)

    def after_send_percentile(self, q: float) -> float:
        """Over the answered requests, counted from their actual send, not their schedule."""
        return _percentile([b["client"] - b["send_lag"] for b in self.breakdowns], q)

    def server_percentile(self, q: float) -> float:
        """Over the answered requests: the service's own time, from its ``Server-Timing``."""
        return _percentile([b[SERVER_PART] for b in self.breakdowns if SERVER_PART in b], q)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    return float(np.percentile(values, q, method="higher"))


def _finite(value: float) -> float | None:
    return None if math.isinf(value) or math.isnan(value) else round(value, 2)


def quiet_collector() -> None:
    """Collect, then move every object alive to the permanent generation, which the collector
    never scans. A benchmark keeps the results of its earlier rates to the end; once they run to
    millions of objects, a full collection over them pauses this process for a quarter of a
    second, and in the middle of a timed rate that pause would count as the system's latency
    (the generator sends late). Each call collects only what was allocated since the last."""
    gc.collect()
    gc.freeze()


async def offer(
    url: str,
    bodies: list[bytes],
    rate_rps: float,
    duration_s: float,
    seed: int = 0,
    grace_s: float = 2.0,
) -> RateResult:
    """Send ``bodies`` (round robin) to ``url`` at Poisson times averaging ``rate_rps``."""
    quiet_collector()
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / rate_rps, int(rate_rps * duration_s * 1.5) + 10)
    arrivals = np.cumsum(gaps)
    arrivals = arrivals[arrivals < duration_s]
    latencies: list[float] = []
    shed_latencies: list[float] = []
    lags: list[float] = []
    breakdowns: list[dict[str, float]] = []
    failures = 0
    shed = 0
    headers = {"content-type": "application/json"}
    connector = aiohttp.TCPConnector(limit=_CONNECTIONS)
    timeout = aiohttp.ClientTimeout(total=duration_s + grace_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def send(body: bytes, scheduled: float) -> None:
            nonlocal failures, shed
            lag = (time.perf_counter() - scheduled) * 1000.0
            lags.append(lag)
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        failures += 1
                        if response.status == 429:
                            shed += 1
                            shed_latencies.append((time.perf_counter() - scheduled) * 1000.0)
                        return
                    timing = response.headers.get("Server-Timing")
            except (aiohttp.ClientError, TimeoutError):
                failures += 1
                return
            latency = (time.perf_counter() - scheduled) * 1000.0
            latencies.append(latency)
            breakdowns.append({**server_timing(timing), "client": latency, "send_lag": lag})

        start = time.perf_counter()
        tasks = []
        for n, at in enumerate(arrivals):
            scheduled = start + float(at)
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(bodies[n % len(bodies)], scheduled)))
        deadline = start + duration_s + grace_s
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.perf_counter()))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            failures += len(pending)
    return RateResult(
        rate_rps,
        len(arrivals),
        len(latencies),
        failures,
        duration_s,
        latencies,
        shed,
        shed_latencies,
        lags,
        breakdowns,
    )


def server_timing(header: str | None) -> dict[str, float]:
    """A ``Server-Timing`` header's ``name;dur=x`` (or ``name;desc=x``) parts as numbers."""
    found: dict[str, float] = {}
    for part in (header or "").split(","):
        name, _, value = part.strip().partition(";")
        _, _, number = value.partition("=")
        try:
            found[name] = float(number)
        except ValueError:
            continue
    return found


async def closed_loop(
    url: str, sessions: list[list[bytes]]
) -> tuple[list[list[float]], list[list[float]]]:
    """Each session's requests sent one after another: client latencies (ms) and the service's
    own ``timings_ms.total`` of each answer."""
    client, server = [], []
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession() as session:
        for bodies in sessions:
            latencies, totals = [], []
            for body in bodies:
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    answer = await response.json()
                    response.raise_for_status()
                latencies.append((time.perf_counter() - started) * 1000.0)
                totals.append(float(answer["timings_ms"]["total"]))
            client.append(latencies)
            server.append(totals)
    return client, server
