"""The experiment switched on and off in one service process (``PUT`` and ``DELETE
/v1/admin/experiment``) at the same offered rates: what separate processes differ by (memory
layout, where the kernel runs them) is then the same on both sides, so the CPU per request of the
two states compares more closely than across processes.

Three states per round, in an order rotated from round to round: ``off``, ``on`` and
``off_again`` (off once more, its own measurements: the noise floor inside one process). After
every switch the service is first offered a warm-up at the lowest rate, measured on its own: a
freshly loaded bundle's first requests pay for what a warm one has in hand (memory the ONNX
sessions allocate on their first shapes, pages of the item table touched for the first time), a
cost of the switch, not of serving an experiment."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any, Protocol

import httpx

from bench.fixture import BenchFixture
from bench.run import process_on_port, service_command

ADMIN_KEY = "bench-admin-key"
OFF, ON, OFF_AGAIN = "off", "on", "off_again"
STATES = (OFF, ON, OFF_AGAIN)
_EXPERIMENT_PATH = "/v1/admin/experiment"


class Measured(Protocol):
    offered_rps: float
    cpu_ms: float | None


#: (state, url, pid, offered rate, round, seconds) → one measurement.
Measure = Callable[[str, str, int, float, int, float], Measured]


def toggled(
    fixture: BenchFixture,
    config: dict[str, object],
    rates: list[float],
    rounds: int,
    duration_s: float,
    warm_up_s: float,
    measure: Measure,
) -> dict[str, Any]:
    """``rounds`` of the three states, each at every rate for ``duration_s`` through
    ``measure`` after a warm-up of ``warm_up_s``; per rate the median CPU ms per request of each
    state, and the experiment's overhead (on over off) and the noise floor (off again over off),
    each the median over rates of the ratios, less one."""
    command, env = service_command(fixture, 1)
    env = env | {
        "REASEQ_ADMIN_API_KEY": ADMIN_KEY,
        "REASEQ_PREDICTION_LOG": "experiment",
        "REASEQ_PREDICTION_LOG_SINK": "file",
        "REASEQ_PREDICTION_LOG_DIR": str(fixture.root / "predictions"),
    }
    cpu: dict[tuple[str, float], list[float]] = {}
    warm_up: dict[str, list[float]] = {}
    with process_on_port(command, env, fixture.root / "overhead-toggled.log") as served:
        running = OFF
        for round_ in range(rounds):
            for state in rotated(round_):
                wanted = ON if state == ON else OFF
                switched = wanted != running
                if switched:
                    _switch(served.url, wanted, config, version=round_ + 1)
                    running = wanted
                found = measure(state, served.url, served.pid, rates[0], round_, warm_up_s)
                if switched and found.cpu_ms is not None:
                    warm_up.setdefault(wanted, []).append(found.cpu_ms)
                for rate in rates:
                    found = measure(state, served.url, served.pid, rate, round_, duration_s)
                    if found.cpu_ms is not None:
                        cpu.setdefault((state, rate), []).append(found.cpu_ms)
        if running == ON:
            _switch(served.url, OFF, config, version=0)
    return summarise(cpu, warm_up, rates)


def rotated(round_: int) -> tuple[str, ...]:
    """The states in round ``round_``'s order: each comes first, second and third in turn."""
    shift = round_ % len(STATES)
    return STATES[shift:] + STATES[:shift]


def summarise(
    cpu: dict[tuple[str, float], list[float]], warm_up: dict[str, list[float]], rates: list[float]
) -> dict[str, Any]:
    per_rate = []
    for rate in rates:
        row: dict[str, Any] = {"offered_rps": rate}
        for state in STATES:
            row[state] = _median(cpu.get((state, rate), []))
        row["cpu_ratio"] = ratio(row[ON], row[OFF])
        row["noise_ratio"] = ratio(row[OFF_AGAIN], row[OFF])
        per_rate.append(row)
    return {
        "per_rate": per_rate,
        "cpu_overhead": overhead([row["cpu_ratio"] for row in per_rate]),
        "noise": overhead([row["noise_ratio"] for row in per_rate]),
        "warm_up_cpu_ms": {state: _median(values) for state, values in warm_up.items()},
    }


def _switch(url: str, state: str, config: dict[str, object], version: int) -> None:
    headers = {"X-API-Key": ADMIN_KEY}
    if state == ON:
        body = config | {"version": version}
        response = httpx.put(f"{url}{_EXPERIMENT_PATH}", json=body, headers=headers, timeout=120)
    else:
        response = httpx.delete(f"{url}{_EXPERIMENT_PATH}", headers=headers, timeout=120)
    response.raise_for_status()


def ratio(part: float | None, whole: float | None) -> float | None:
    """``part / whole`` to 4 places, or ``None`` when either is missing."""
    return round(part / whole, 4) if part and whole else None


def overhead(ratios: list[float | None]) -> float | None:
    """The median of the ratios present, less one (4 places)."""
    present = [r for r in ratios if r is not None]
    return round(statistics.median(present) - 1.0, 4) if present else None


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None
