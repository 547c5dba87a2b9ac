"""The experiment switched on and off in one service process (``PUT`` and ``DELETE
/v1/admin/experiment``), alternating, at the same offered rates: what separate processes differ
by (memory layout, where the kernel runs them) is then the same on both sides, so the CPU per
request of the two states compares more closely than across processes."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any, Protocol

import httpx

from bench.fixture import BenchFixture
from bench.run import process_on_port, service_command

ADMIN_KEY = "bench-admin-key"
OFF, ON = "off", "on"
_EXPERIMENT_PATH = "/v1/admin/experiment"


class Measured(Protocol):
    offered_rps: float
    cpu_ms: float | None


Measure = Callable[[str, str, int, float, int], Measured]


def toggled(
    fixture: BenchFixture,
    config: dict[str, object],
    rates: list[float],
    rounds: int,
    measure: Measure,
) -> dict[str, Any]:
    """``rounds`` of both states (order alternating), each at every rate through ``measure``
    (state, url, pid, rate, round); the median CPU ms per request of each state per rate, and
    the experiment's overhead (median over rates of the ratios, less one)."""
    command, env = service_command(fixture, 1)
    env = env | {
        "REASEQ_ADMIN_API_KEY": ADMIN_KEY,
        "REASEQ_PREDICTION_LOG": "experiment",
        "REASEQ_PREDICTION_LOG_SINK": "file",
        "REASEQ_PREDICTION_LOG_DIR": str(fixture.root / "predictions"),
    }
    cpu: dict[tuple[str, float], list[float]] = {}
    with process_on_port(command, env, fixture.root / "overhead-toggled.log") as served:
        for round_ in range(rounds):
            for state in (OFF, ON) if round_ % 2 == 0 else (ON, OFF):
                _switch(served.url, state, config, version=2 * round_ + 1)
                for rate in rates:
                    found = measure(state, served.url, served.pid, rate, round_)
                    if found.cpu_ms is not None:
                        cpu.setdefault((state, rate), []).append(found.cpu_ms)
        _switch(served.url, OFF, config, version=0)
    per_rate = []
    for rate in rates:
        off, on = (_median(cpu.get((state, rate), [])) for state in (OFF, ON))
        ratio = round(on / off, 4) if off and on else None
        per_rate.append({"offered_rps": rate, OFF: off, ON: on, "cpu_ratio": ratio})
    ratios = [row["cpu_ratio"] for row in per_rate if row["cpu_ratio"] is not None]
    overhead = round(statistics.median(ratios) - 1.0, 4) if ratios else None
    return {"per_rate": per_rate, "cpu_overhead": overhead}


def _switch(url: str, state: str, config: dict[str, object], version: int) -> None:
    headers = {"X-API-Key": ADMIN_KEY}
    if state == ON:
        body = config | {"version": version}
        response = httpx.put(f"{url}{_EXPERIMENT_PATH}", json=body, headers=headers, timeout=120)
    else:
        response = httpx.delete(f"{url}{_EXPERIMENT_PATH}", headers=headers, timeout=120)
    response.raise_for_status()


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None
