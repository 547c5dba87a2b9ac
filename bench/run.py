"""One ladder of one system: rising offered rates per workload until it saturates, with the
latency, the CPU time of the system's processes and (for the service) its stage times at each
rate; the service's session and overload measurements."""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.fixture import BenchFixture
from bench.loadgen import RateResult, closed_loop, offer
from bench.steal import EXTRA_PASSES, MachineCpu, least_robbed, robbed
from bench.systems import tree_cpu_seconds
from bench.workloads import Workload
from loadtest.server_metrics import STAGE_HISTOGRAM, Scrape
from loadtest.service_process import free_port, serving_process

#: One measurement's figures, as they go into the summary.
Figures = dict[str, Any]

P99_OBJECTIVE_MS = 50.0
_MAX_FAILED = 0.01
_SATURATED_P50_MS = 1000.0


@dataclass(frozen=True)
class Ladder:
    start_rps: float
    factor: float = 1.4
    steps: int = 16


@dataclass
class SystemRun:
    """One system under one workload: every rate tried, and the stage profile at each."""

    system: str
    workload: str
    rates: list[RateResult] = field(default_factory=list)
    stages_ms: list[dict[str, float]] = field(default_factory=list)
    #: CPU milliseconds of the system's processes per answered request, at each rate.
    cpu_ms: list[float | None] = field(default_factory=list)
    #: Share of the machine's CPU time the hypervisor stole while each rate was offered.
    stolen: list[float | None] = field(default_factory=list)
    #: Which of the interleaved rounds this ladder was.
    round: int = 0
    #: 1-minute load average before and after the ladder.
    load_average: tuple[float, float] = (0.0, 0.0)

    def sustainable(self) -> RateResult | None:
        """The highest offered rate that was sustained with p99 within the objective."""
        good = [r for r in self.rates if sustained(r)]
        return max(good, key=lambda r: r.offered_rps) if good else None

    def cpu_ms_at(self, result: RateResult | None) -> float | None:
        if result is None or len(self.cpu_ms) != len(self.rates):
            return None
        return self.cpu_ms[self.rates.index(result)]

    def sort_by_rate(self) -> None:
        """Rates, and what was measured at each, in the order of the offered rate."""
        order = sorted(range(len(self.rates)), key=lambda n: self.rates[n].offered_rps)
        self.rates = [self.rates[n] for n in order]
        self.cpu_ms = [self.cpu_ms[n] for n in order]
        self.stolen = [self.stolen[n] for n in order]
        self.stages_ms = [self.stages_ms[n] for n in order]

    def capacity(self) -> RateResult | None:
        """The highest throughput achieved at any latency, with at most 1% failing."""
        answered = [r for r in self.rates if not saturated(r)]
        return max(answered, key=lambda r: r.achieved_rps) if answered else None


def saturated(result: RateResult) -> bool:
    """More than 1% failed (unanswered within the grace time) or the median passed a second:
    the system no longer keeps up with the offered rate."""
    return result.failed > _MAX_FAILED * result.sent or result.percentile(50) > _SATURATED_P50_MS


def sustained(result: RateResult) -> bool:
    """Answered (almost) everything it was sent, with p99 within the objective. The Poisson
    draw sends about, not exactly, the offered rate; what was sent is what must be answered."""
    return (
        result.sent > 0
        and result.failed <= _MAX_FAILED * result.sent
        and result.percentile(99) <= P99_OBJECTIVE_MS
    )


@dataclass(frozen=True)
class Served:
    url: str
    pid: int


#: How much lower than the load generator's the CPU priority of every measured system is. On
#: shared cores a system at equal priority starves the generator, whose own lateness then counts
#: as the system's latency; a load generator on another machine is never starved.
SYSTEM_NICENESS = 5


@contextmanager
def process_on_port(command: list[str], env: dict[str, str], log_path: Path) -> Iterator[Served]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [*command, "--port", str(port)]
    with serving_process(command, env, log_path, url, 180, niceness=SYSTEM_NICENESS) as process:
        yield Served(url, process.pid)


def service_command(fixture: BenchFixture, workers: int = 1) -> tuple[list[str], dict[str, str]]:
    """Several ``workers`` share their metric values through a folder of the service's own."""
    env = {
        "REASEQ_BUNDLE_ROOT": str(fixture.bundles),
        "REASEQ_STORE": "embedded",
        "REASEQ_EMBEDDED_USERS_PATH": str(fixture.users_path),
        "REASEQ_ACCESS_LOG": "false",
        "REASEQ_LOG_LEVEL": "warning",
        "REASEQ_WORKERS": str(workers),
    }
    return [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1"], env


def baseline_command(fixture: BenchFixture) -> tuple[list[str], dict[str, str]]:
    command = [
        sys.executable, "-m", "bench.baseline",
        "--model-dir", str(fixture.model_dir),
        "--bundle-dir", str(fixture.bundle_dir),
        "--users", str(fixture.users_path),
    ]  # fmt: skip
    return command, {}


def climb(
    url: str,
    system: str,
    workload: Workload,
    bodies: list[bytes],
    ladder: Ladder,
    duration_s: float,
    scrape: bool,
    log: Callable[[str], object],
    pid: int | None = None,
    round_index: int = 0,
) -> SystemRun:
    """Offer rising rates until two in a row saturate the system (so both the rate sustained
    within the latency objective and the capacity at any latency are seen), then one rate at the
    knee (:func:`knee_rate`); with ``pid``, the CPU time of that process tree per answered
    request at each rate."""
    run = SystemRun(system, workload.name, round=round_index)
    load_before = os.getloadavg()[0]
    asyncio.run(offer(f"{url}/v1/rank", bodies, ladder.start_rps, 2.0, seed=99))  # warm up

    def measure(rate: float, seed: int) -> RateResult:
        before = Scrape.fetch(url) if scrape else None
        cpu_before = tree_cpu_seconds(pid) if pid is not None else None
        machine_before = MachineCpu.now()
        result = asyncio.run(offer(f"{url}/v1/rank", bodies, rate, duration_s, seed=seed))
        run.stolen.append(MachineCpu.now().stolen_share_since(machine_before))
        cpu = None
        if cpu_before is not None and pid is not None and result.ok:
            cpu = 1000.0 * (tree_cpu_seconds(pid) - cpu_before) / result.ok
        run.rates.append(result)
        run.cpu_ms.append(cpu)
        run.stages_ms.append(stage_profile(before, Scrape.fetch(url)) if before else {})
        log(f"{system} {workload.name} round {round_index} {result.summary()} cpu_ms {cpu}")
        time.sleep(1.0)  # let queues drain between rates
        return result

    rate = ladder.start_rps
    misses = 0
    for step in range(ladder.steps):
        misses = misses + 1 if saturated(measure(rate, step)) else 0
        if misses == 2:
            break
        rate *= ladder.factor
    between = knee_rate(run)
    if between is not None:
        measure(between, ladder.steps)
        run.sort_by_rate()
    run.load_average = (load_before, os.getloadavg()[0])
    return run


def knee_rate(run: SystemRun) -> float | None:
    """The geometric middle between the highest rate sustained and the next rate offered above
    it, which was not: one more rate there halves the ladder's step where the answer lies."""
    best = run.sustainable()
    if best is None:
        return None
    above = [r.offered_rps for r in run.rates if r.offered_rps > best.offered_rps]
    return math.sqrt(best.offered_rps * min(above)) if above else None


def stage_profile(before: Scrape, after: Scrape) -> dict[str, float]:
    """Mean milliseconds per request of each stage, the whole request and the batch size."""
    delta = after.minus(before)
    profile: dict[str, float] = {}
    requests = sum(delta.select("reaseq_request_duration_seconds_count", route="/v1/rank").values())
    if not requests:
        return profile
    total = sum(delta.select("reaseq_request_duration_seconds_sum", route="/v1/rank").values())
    profile["request"] = 1000.0 * total / requests
    for labels, value in delta.select(f"{STAGE_HISTOGRAM}_sum").items():
        stage = dict(labels)["stage"]
        profile[stage] = 1000.0 * value / requests
    batches = sum(delta.select("reaseq_batch_size_count").values())
    batched = sum(delta.select("reaseq_batch_size_sum").values())
    if batches:
        profile["mean_batch_requests"] = batched / batches
    return profile


def session_speedup(url: str, sessions: list[list[bytes]]) -> dict[str, float]:
    """Each user's first request against the later ones of the same session (other pages of
    candidates, the same behaviours: cache hits), as the client and as the service see it."""
    client, server = asyncio.run(closed_loop(f"{url}/v1/rank", sessions))
    found: dict[str, float] = {
        "users": len(sessions),
        "requests_per_session": len(sessions[0]),
    }
    for side, latencies in (("client", client), ("server", server)):
        first = statistics.median(session[0] for session in latencies)
        again = statistics.median(ms for session in latencies for ms in session[1:])
        found[f"{side}_first_ms_median"] = round(first, 3)
        found[f"{side}_repeat_ms_median"] = round(again, 3)
        found[f"{side}_speedup"] = round(first / again, 3)
    return found


#: Admission limits of the overload run: few requests in flight, a short queue and a short
#: queue wait, so that what is admitted is served within the objective and the rest is shed.
OVERLOAD_ADMISSION = {
    "REASEQ_RANK_MAX_IN_FLIGHT": "3",
    "REASEQ_RANK_MAX_QUEUED": "0",
    "REASEQ_RANK_QUEUE_TIMEOUT_MS": "5",
}
#: The default limits with the queue first come, first served throughout (no controlled delay
#: once it stands): what the standing-queue policy is judged against.
FIRST_COME_ADMISSION = {"REASEQ_RANK_QUEUE_CONGESTED_TIMEOUT_MS": "0"}


def overload_rounds(
    runs: int, configs: dict[str, dict[str, str] | None], measure: Callable[[str, int], Figures]
) -> dict[str, Figures]:
    """``runs`` overload runs of each admission config, interleaved (a, b, c, a, b, c, …); a
    config with fewer than ``runs`` runs robbed of at most :data:`ROBBED_SHARE` of the CPU is
    run again after the others (at most :data:`EXTRA_PASSES` passes). Per config, of its
    ``runs`` least robbed runs the one with the median accepted p99, with every run's p99,
    stolen CPU and whether it counted."""
    found: dict[str, list[Figures]] = {name: [] for name in configs}
    for n in range(runs):
        for name in configs:
            found[name].append(measure(name, n))
    for extra in range(EXTRA_PASSES):
        short = [
            name
            for name, each in found.items()
            if sum(not robbed(r.get("cpu_stolen_share")) for r in each) < runs
        ]
        if not short:
            break
        for name in short:
            found[name].append(measure(name, runs + extra))
    chosen = {}
    for name, each in found.items():
        least = least_robbed([r.get("cpu_stolen_share") for r in each], runs)
        ordered = sorted(
            (each[n] for n in least), key=lambda r: _p99_or_worst(r["accepted_p99_ms"])
        )
        chosen[name] = ordered[len(ordered) // 2] | {
            "runs": len(each),
            "accepted_p99_ms_each": [r["accepted_p99_ms"] for r in each],
            "cpu_stolen_share_each": [r.get("cpu_stolen_share") for r in each],
            "counted_each": [n in least for n in range(len(each))],
        }
    return chosen


def _p99_or_worst(value: object) -> float:
    return float(value) if isinstance(value, int | float) and value == value else math.inf


def overload(
    fixture: BenchFixture,
    workload: Workload,
    capacity_rps: float,
    factor: float,
    duration_s: float,
    log_path: Path,
    admission: dict[str, str] | None = None,
    workers: int = 1,
) -> Figures:
    """Offer ``factor`` x ``capacity_rps`` (the most the service answered in its ladders) to a
    service with the ``admission`` limits (``None``: its defaults): the share shed with 429, the
    latency of the requests accepted and of the 429 answers, and the load generator's own lag
    (on shared cores it competes with the service it overloads)."""
    command, env = service_command(fixture, workers)
    with process_on_port(command, env | (admission or {}), log_path) as served:
        bodies = fixture.requests(workload)
        url = f"{served.url}/v1/rank"
        asyncio.run(offer(url, bodies, capacity_rps / 2, 2.0, seed=98))  # warm up
        machine_before = MachineCpu.now()
        result = asyncio.run(offer(url, bodies, factor * capacity_rps, duration_s, seed=97))
        stolen = MachineCpu.now().stolen_share_since(machine_before)
    return {
        "workload": workload.name,
        "admission": admission or {},
        "capacity_rps": round(capacity_rps, 2),
        "offered_rps": round(factor * capacity_rps, 2),
        "factor": factor,
        "sent": result.sent,
        "accepted": result.ok,
        "shed": result.shed,
        "failed_otherwise": result.failed - result.shed,
        "accepted_rps": round(result.achieved_rps, 2),
        "accepted_p50_ms": round(result.accepted_percentile(50), 2),
        "accepted_p99_ms": round(result.accepted_percentile(99), 2),
        "shed_p99_ms": _rounded(result.shed_percentile(99)),
        "send_lag_p99_ms": _rounded(result.lag_percentile(99)),
        "accepted_after_send_p99_ms": _rounded(result.after_send_percentile(99)),
        "accepted_server_p99_ms": _rounded(result.server_percentile(99)),
        "cpu_stolen_share": None if stolen is None else round(stolen, 3),
    }


def _rounded(value: float) -> float | None:
    return None if value != value else round(value, 2)
