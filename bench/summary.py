"""The figures of one bench run (docs/benchmarks.json): per workload and system, every round's
ladder and the medians over the interleaved rounds, the ratios between systems, and the
service's session, overload and profile measurements."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.rounds import counted, ladder_stolen
from bench.run import P99_OBJECTIVE_MS, SYSTEM_NICENESS, Ladder, SystemRun
from bench.steal import EXTRA_PASSES, ROBBED_SHARE
from bench.systems import BASELINE, RAY_SERVE, SERVICE
from bench.tail import tail_breakdown
from bench.workloads import Workload
from model_export.report import machine_description

COMMAND = "make bench"
#: Stages of the model itself in the service's stage profile (the rest is serving around it).
MODEL_STAGES = ("user_encoder", "candidate_encoder", "attention", "scorer", "full")

#: The run's summary: a JSON object (docs/benchmarks.json), rendered into docs/BENCHMARKS.md.
Summary = dict[str, Any]


@dataclass(frozen=True)
class BenchReport:
    workloads: list[Workload]
    runs: list[SystemRun]
    peak_flops: float
    session: dict[str, float]
    duration_s: float
    workers: int
    wall_s: float
    load_average: tuple[float, float] = (0.0, 0.0)  # 1-minute load before and after the run
    profile: dict[str, object] = field(default_factory=dict)  # py-spy self time, when taken
    overload: dict[str, object] = field(default_factory=dict)  # 3x, tight admission limits
    overload_defaults: dict[str, object] = field(default_factory=dict)  # 3x, default limits
    #: 3x, default limits with the queue first come, first served throughout.
    overload_first_come: dict[str, object] = field(default_factory=dict)
    #: Each system: name, description, settings, score parity with the service, timed or not.
    systems: list[dict[str, object]] = field(default_factory=list)
    #: The session measurement of each system that took it.
    sessions: dict[str, dict[str, float]] = field(default_factory=dict)
    rounds: int = 1


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def round_entry(run: SystemRun) -> dict[str, Any]:
    """One ladder: its sustainable rate and capacity, the CPU per request there, every rate."""
    best, most = run.sustainable(), run.capacity()
    index = run.rates.index(best) if best else None
    stages = run.stages_ms[index] if index is not None and index < len(run.stages_ms) else {}
    rates = []
    for n, rate in enumerate(run.rates):
        cpu = run.cpu_ms[n] if n < len(run.cpu_ms) else None
        stolen = run.stolen[n] if n < len(run.stolen) else None
        rates.append(
            rate.summary()
            | {"cpu_ms_per_request": _round(cpu, 3), "cpu_stolen_share": _round(stolen, 3)}
        )
    ladder_share = ladder_stolen(run)
    return {
        "round": run.round,
        "sustainable_rps": _round(best.achieved_rps) if best else None,
        "sustainable_offered_rps": _round(best.offered_rps) if best else None,
        "capacity_rps": _round(most.achieved_rps) if most else None,
        "cpu_ms_at_sustainable": _round(run.cpu_ms_at(best), 3),
        "load_average": [round(x, 2) for x in run.load_average],
        "cpu_stolen_share": _round(ladder_share, 3),
        "stages_ms_at_sustainable": {k: round(v, 3) for k, v in stages.items()} or None,
        "tail_at_sustainable": tail_breakdown(best.breakdowns) if best else None,
        # At the sustainable rate already when that rate was also the highest throughput.
        "tail_at_capacity": tail_breakdown(most.breakdowns) if most and most is not best else None,
        "rates": rates,
    }


def _median(values: list[float | None], missing: float | None = 0.0) -> float | None:
    """The median, a missing value counting as ``missing`` (a rate not sustained is 0); None
    when nothing is left or the median is 0."""
    present = [v if v is not None else missing for v in values]
    kept = [v for v in present if v is not None]
    if not kept:
        return None
    middle = statistics.median(kept)
    return round(middle, 3) if middle else None


def system_entry(runs: list[SystemRun], counted_rounds: int | None = None) -> dict[str, Any]:
    """One system under one workload over its rounds: medians, spread, the median round, over
    the ``counted_rounds`` least robbed of its ladders (all of them when None)."""
    climbed = [round_entry(run) for run in sorted(runs, key=lambda r: r.round)]
    kept = counted(climbed, counted_rounds or len(climbed))
    for entry in climbed:
        entry["counted"] = entry["round"] in kept
    rounds = [entry for entry in climbed if entry["counted"]]
    sustainable = [r["sustainable_rps"] for r in rounds]
    capacity = [r["capacity_rps"] for r in rounds]
    filled = [v or 0.0 for v in sustainable]
    median = _median(sustainable)
    middle = min(range(len(rounds)), key=lambda n: abs(filled[n] - (median or 0.0)))
    return {
        "rounds": climbed,
        "sustainable_rps": median,
        "sustainable_spread": [min(filled), max(filled)],
        "capacity_rps": _median(capacity),
        "capacity_spread": [min(v or 0.0 for v in capacity), max(v or 0.0 for v in capacity)],
        "cpu_ms_per_request": _median([r["cpu_ms_at_sustainable"] for r in rounds], None),
        "median_round": rounds[middle]["round"],
        "stages_ms_at_sustainable": rounds[middle]["stages_ms_at_sustainable"],
        "tail_at_sustainable": rounds[middle]["tail_at_sustainable"],
        "tail_at_capacity": rounds[middle]["tail_at_capacity"],
    }


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    return round(ours / theirs, 2) if ours and theirs else None


def summarise(report: BenchReport, item_dim: int, hidden_dim: int) -> Summary:
    summary: Summary = {
        "machine": machine_description(),
        "command": COMMAND,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "p99_objective_ms": P99_OBJECTIVE_MS,
        "seconds_per_rate": report.duration_s,
        "ladder_factor": Ladder.factor,
        "system_niceness": SYSTEM_NICENESS,
        "rounds": report.rounds,
        "robbed_share": ROBBED_SHARE,
        "extra_passes": EXTRA_PASSES,
        "service_workers": report.workers,
        "matmul_peak_gflops": round(report.peak_flops / 1e9, 2),
        "systems": report.systems,
        "session": report.session,
        "sessions": report.sessions,
        "profile": report.profile,
        "overload": report.overload,
        "overload_defaults": report.overload_defaults,
        "overload_first_come": report.overload_first_come,
        "wall_s": round(report.wall_s, 1),
        "load_average_before_after": [round(x, 2) for x in report.load_average],
        "workloads": {},
    }
    for workload in report.workloads:
        flops = workload.model_flops(item_dim, hidden_dim)
        entry: dict[str, Any] = {
            "candidates": workload.candidates,
            "real_behaviours": workload.real,
            "generated_behaviours": workload.generated,
            "model_mflop_per_request": round(flops / 1e6, 2),
        }
        systems = sorted({r.system for r in report.runs if r.workload == workload.name})
        for system in systems:
            runs = [r for r in report.runs if r.system == system and r.workload == workload.name]
            entry[system] = system_entry(runs, report.rounds)
        service = entry.get(SERVICE, {})
        for other in (BASELINE, RAY_SERVE):
            theirs = entry.get(other, {})
            entry[f"ratio_{other}"] = _ratio(
                service.get("sustainable_rps"), theirs.get("sustainable_rps")
            )
            entry[f"capacity_ratio_{other}"] = _ratio(
                service.get("capacity_rps"), theirs.get("capacity_rps")
            )
            entry[f"cpu_ratio_{other}"] = _ratio(
                theirs.get("cpu_ms_per_request"), service.get("cpu_ms_per_request")
            )
        rate = service.get("sustainable_rps")
        entry["service_flops_fraction_of_peak"] = (
            round(rate * flops / report.peak_flops, 4) if rate else None
        )
        summary["workloads"][workload.name] = entry
    return summary
