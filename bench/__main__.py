"""``python -m bench`` (``make bench``): the serving benchmark, written to docs/BENCHMARKS.md and
docs/benchmarks.json with a latency-throughput plot."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bench.fixture import build_fixture
from bench.peak import matmul_peak_flops
from bench.profile import profile_under_load
from bench.report import BenchReport, write_report
from bench.run import (
    Ladder,
    SystemRun,
    baseline_command,
    climb,
    overload,
    process_on_port,
    service_command,
    session_speedup,
)
from bench.workloads import SESSION, WORKLOADS

console = Console(stderr=True)
app = typer.Typer(add_completion=False, help=__doc__)

#: Where each system's ladder starts, per workload (requests per second).
SERVICE_START = {"W1": 20.0, "W2": 3.0}
BASELINE_START = {"W1": 5.0, "W2": 1.0}
SESSION_USERS = 40
OVERLOAD_FACTOR = 3.0
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
    workers: Annotated[int, typer.Option(help="Service worker processes.")] = 1,
) -> None:
    chosen = [WORKLOADS[name.strip()] for name in workloads.split(",")]
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    fixture = build_fixture(work_dir, demo_dir / "model", demo_dir / "data", chosen)
    console.print(f"bench bundle and users ready under {work_dir}")
    peak = matmul_peak_flops()
    console.print(f"matrix-multiply peak: {peak / 1e9:.1f} GFLOP/s")
    runs: list[SystemRun] = []
    session: dict[str, float] = {}
    command, env = service_command(fixture, workers)
    profile: dict[str, object] = {}
    with process_on_port(command, env, work_dir / "service.log") as served:
        url = served.url
        if "W2" in {w.name for w in chosen}:
            session = session_speedup(url, _session_bodies(fixture.requests(WORKLOADS["W2"])))
            console.print(f"session: {session}")
        for workload in chosen:
            ladder = Ladder(SERVICE_START[workload.name])
            bodies = fixture.requests(workload)
            run = climb(url, "service", workload, bodies, ladder, duration_s, True, console.print)
            runs.append(run)
            best = run.sustainable()
            if workload.name == chosen[0].name and best is not None:
                top = profile_under_load(served.pid, url, bodies, best.offered_rps, duration_s)
                if top is not None:
                    profile = {
                        "workload": workload.name,
                        "offered_rps": round(best.offered_rps, 2),
                        "top_self_time": [[name, round(share, 4)] for name, share in top],
                    }
    overloaded: dict[str, object] = {}
    first = next(r for r in runs if r.workload == chosen[0].name)
    best = first.sustainable()
    if best is not None:
        overloaded = overload(
            fixture, chosen[0], best.offered_rps, OVERLOAD_FACTOR, duration_s,
            work_dir / "overload.log",
        )  # fmt: skip
        console.print(f"overload: {overloaded}")
    command, env = baseline_command(fixture)
    with process_on_port(command, env, work_dir / "baseline.log") as served:
        for workload in chosen:
            ladder = Ladder(BASELINE_START[workload.name])
            bodies = fixture.requests(workload)
            run = climb(
                served.url, "baseline", workload, bodies, ladder, duration_s, False, console.print
            )
            runs.append(run)
    report = BenchReport(
        workloads=chosen,
        runs=runs,
        peak_flops=peak,
        session=session,
        duration_s=duration_s,
        workers=workers,
        wall_s=time.perf_counter() - started,
        load_average=(load_before, os.getloadavg()[0]),
        profile=profile,
        overload=overloaded,
    )
    paths = write_report(report, fixture, docs_dir)
    console.print(f"wrote {', '.join(str(p) for p in paths)}")


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
