"""``python -m bench`` (``make bench``): the serving benchmark, written to docs/BENCHMARKS.md and
docs/benchmarks.json with a latency-throughput plot."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bench.fixture import BenchFixture, build_fixture
from bench.lineup import lineup
from bench.peak import matmul_peak_flops
from bench.profile import profile_under_load
from bench.report import BenchReport, write_report
from bench.rounds import counted, ladder_stolen, short_of_clean
from bench.run import (
    FIRST_COME_ADMISSION,
    OVERLOAD_ADMISSION,
    Ladder,
    SystemRun,
    climb,
    overload,
    overload_rounds,
    process_on_port,
    session_speedup,
)
from bench.steal import EXTRA_PASSES
from bench.systems import (
    PARITY_TOLERANCE,
    SERVICE,
    System,
    answers,
    max_score_difference,
    parity_bodies,
)
from bench.workloads import SESSION, WORKLOADS, Workload
from loadtest.service_process import ServiceDidNotStart
from service.threads import usable_cores

console = Console(stderr=True)
app = typer.Typer(add_completion=False, help=__doc__)

SESSION_USERS = 40
OVERLOAD_FACTOR = 3.0
#: Overload runs per admission config: the median one is reported.
OVERLOAD_RUNS = 3
SESSION_PAGES = 4


@app.command()
def main(
    demo_dir: Annotated[
        Path, typer.Option(help="Output of `reaseq demo` (model and data).")
    ] = Path("var/demo"),
    work_dir: Annotated[Path, typer.Option(help="Bench bundle, users and logs.")] = Path(
        "var/bench"
    ),
    docs_dir: Annotated[Path, typer.Option(help="Where the report goes.")] = Path("docs"),
    workloads: Annotated[str, typer.Option(help="Comma-separated workloads.")] = "W1,W2",
    duration_s: Annotated[float, typer.Option(help="Seconds per offered rate.")] = 8.0,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Service worker processes; unset = one per usable core."),
    ] = None,
    rounds: Annotated[
        int, typer.Option(min=1, help="Ladders per system, interleaved (medians reported).")
    ] = 3,
) -> None:
    chosen = [WORKLOADS[name.strip()] for name in workloads.split(",")]
    workers = workers or usable_cores()
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    fixture = build_fixture(work_dir, demo_dir / "model", demo_dir / "data", chosen)
    stronger = demo_dir / "model_sa"
    self_attention = (
        build_fixture(work_dir / "self_attention", stronger, demo_dir / "data", chosen)
        if (stronger / "ranker.pt").is_file()
        else None
    )
    console.print(f"bench bundles and users ready under {work_dir}")
    peak = matmul_peak_flops()
    console.print(f"matrix-multiply peak: {peak / 1e9:.1f} GFLOP/s")
    systems = lineup(fixture, self_attention, workers, console.print)
    parity = _parity(systems, fixture, chosen[0], work_dir)
    timed = [s for s in systems if _timed(parity.get(s.name))]
    runs: list[SystemRun] = []
    sessions: dict[str, dict[str, float]] = {}
    profile: dict[str, object] = {}

    def climb_round(system: System, round_index: int) -> None:
        nonlocal profile
        log_path = work_dir / f"{system.name}-{round_index}.log"
        with process_on_port(system.command, system.env, log_path) as served:
            own = system.fixture
            if round_index == 0 and system.session and "W2" in {w.name for w in chosen}:
                pages = _session_bodies(own.requests(WORKLOADS["W2"]))
                sessions[system.name] = session_speedup(served.url, pages)
                console.print(f"session {system.name}: {sessions[system.name]}")
            for workload in chosen:
                bodies = own.requests(workload)
                run = climb(
                    served.url, system.name, workload, bodies,
                    Ladder(system.start_rps[workload.name]), duration_s, system.scrape,
                    console.print, pid=served.pid, round_index=round_index,
                )  # fmt: skip
                runs.append(run)
                best = run.sustainable()
                if not profile and system.name == SERVICE and best is not None:
                    profile = _profile(served.pid, served.url, bodies, best.offered_rps,
                                       duration_s, workload)  # fmt: skip

    for round_index in range(rounds):
        for system in timed:
            climb_round(system, round_index)
    for extra in range(EXTRA_PASSES):  # robbed rounds climbed again, interleaved as before
        short = short_of_clean(runs, [s.name for s in timed], rounds)
        if not short:
            break
        console.print(f"robbed rounds: climbing again for {', '.join(short)}")
        for system in (s for s in timed if s.name in short):
            climb_round(system, rounds + extra)
    overloaded = _overload(fixture, chosen[0], runs, rounds, duration_s, work_dir, workers)
    report = BenchReport(
        workloads=chosen,
        runs=runs,
        peak_flops=peak,
        session=sessions.get(SERVICE, {}),
        duration_s=duration_s,
        workers=workers,
        wall_s=time.perf_counter() - started,
        load_average=(load_before, os.getloadavg()[0]),
        profile=profile,
        overload=overloaded.get("tight", {}),
        overload_defaults=overloaded.get("defaults", {}),
        overload_first_come=overloaded.get("first_come", {}),
        systems=[_describe(s, parity) for s in systems],
        sessions=sessions,
        rounds=rounds,
    )
    paths = write_report(report, fixture, docs_dir)
    console.print(f"wrote {', '.join(str(p) for p in paths)}")


def _parity(
    systems: list[System], fixture: BenchFixture, workload: Workload, work_dir: Path
) -> dict[str, float]:
    """Each system's largest score difference from the service on the same requests, checked
    before anything is timed; a system of another bundle is compared with nothing."""
    bodies = parity_bodies(fixture.requests(workload))
    service = next(s for s in systems if s.name == SERVICE)
    with process_on_port(service.command, service.env, work_dir / "parity.log") as served:
        reference = answers(served.url, bodies)
    found: dict[str, float] = {SERVICE: 0.0}
    for system in systems:
        if system.name == SERVICE or not system.same_bundle:
            continue
        log_path = work_dir / f"parity-{system.name}.log"
        try:
            with process_on_port(system.command, system.env, log_path) as served:
                found[system.name] = max_score_difference(reference, answers(served.url, bodies))
        except ServiceDidNotStart as error:
            console.print(f"{system.name} did not start ({error}; see {log_path}): not timed")
            found[system.name] = math.nan
            continue
        console.print(f"parity {system.name}: max abs score difference {found[system.name]:.2e}")
    return found


def _profile(
    pid: int, url: str, bodies: list[bytes], rate: float, duration_s: float, workload: Workload
) -> dict[str, object]:
    top = profile_under_load(pid, url, bodies, rate, duration_s)
    if top is None:
        return {}
    return {
        "workload": workload.name,
        "offered_rps": round(rate, 2),
        "top_self_time": [[name, round(share, 4)] for name, share in top],
    }


def _overload(
    fixture: BenchFixture, workload: Workload, runs: list[SystemRun], rounds: int,
    duration_s: float, work_dir: Path, workers: int,
) -> dict[str, dict[str, object]]:  # fmt: skip
    """3x the most the service answered at any rate of a ladder (median over the rounds the
    medians take, :func:`bench.rounds.counted`; with its default limits it sheds above its
    sustainable rate, so a ladder's capacity understates what it can answer), with its default
    admission limits, with the queue first come, first served throughout, and with the tight
    limits; each :data:`OVERLOAD_RUNS` times, interleaved."""
    ladders = [r for r in runs if r.system == SERVICE and r.workload == workload.name and r.rates]
    kept = counted(
        [{"round": r.round, "cpu_stolen_share": ladder_stolen(r)} for r in ladders],
        rounds,
    )  # fmt: skip
    answered = sorted(
        max(rate.achieved_rps for rate in run.rates) for run in ladders if run.round in kept
    )
    if not answered:
        return {}
    capacity = answered[len(answered) // 2]  # the median round's most
    configs = {"defaults": None, "first_come": FIRST_COME_ADMISSION, "tight": OVERLOAD_ADMISSION}

    def measure(name: str, n: int) -> dict[str, object]:
        found = overload(
            fixture, workload, capacity, OVERLOAD_FACTOR, duration_s,
            work_dir / f"overload-{name}-{n}.log", configs[name], workers,
        )  # fmt: skip
        console.print(f"overload ({name}, run {n}): {found}")
        return found

    return overload_rounds(OVERLOAD_RUNS, configs, measure)


def _timed(difference: float | None) -> bool:
    """Timed when its scores match the service's (or it serves another bundle)."""
    return difference is None or difference <= PARITY_TOLERANCE


def _describe(system: System, parity: dict[str, float]) -> dict[str, object]:
    difference = parity.get(system.name)
    started = difference is None or not math.isnan(difference)
    return {
        "name": system.name,
        "description": system.description,
        "settings": system.settings,
        "parity_max_abs_difference": difference if started else None,
        "started": started,
        "timed": _timed(difference),
    }


def _session_bodies(w2_bodies: list[bytes]) -> list[list[bytes]]:
    """Sessions of W2 users: pages of SESSION.candidates candidates from one W2 request each."""
    sessions = []
    for raw in w2_bodies[:SESSION_USERS]:
        body = json.loads(raw)
        pages = [
            body["candidates"][p * SESSION.candidates : (p + 1) * SESSION.candidates]
            for p in range(SESSION_PAGES)
        ]
        user = body["user_id"]
        sessions.append(
            [json.dumps({"user_id": user, "candidates": page}).encode() for page in pages]
        )
    return sessions


if __name__ == "__main__":
    app()
