"""``python -m bench.ray_peer.search``: the peer's W1 rates under each of ``SEARCH_GRID``'s
settings, one after the other, printed as the table of the package's docstring.

Each setting waits for a quiet machine first (a one-minute load average under ``--quiet-below``,
for at most ``--quiet-wait-s``; the load it started at is a column of the table). It needs a
bench fixture already built (``bench.fixture.build_fixture``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from bench.fixture import BenchFixture
from bench.ray_peer import SEARCH_GRID, RayPeerSettings, ray_peer_command
from bench.run import Ladder, SystemRun, climb, process_on_port
from bench.workloads import W1


def main(
    root: Annotated[Path, typer.Option(help="The bench fixture's folder.")] = Path("var/bench"),
    duration_s: Annotated[float, typer.Option()] = 4.0,
    start_rps: Annotated[float, typer.Option()] = 8.0,
    quiet_below: Annotated[float, typer.Option()] = 1.5,
    quiet_wait_s: Annotated[float, typer.Option()] = 1200.0,
) -> None:
    fixture = BenchFixture(root, model_dir=Path())  # the model is the baseline's, not needed
    bodies = fixture.requests(W1)
    rows = []
    for settings in SEARCH_GRID:
        load = _quiet(quiet_below, quiet_wait_s)
        command, env = ray_peer_command(fixture.bundle_dir, fixture.users_path, settings)
        with process_on_port(command, env, root / "ray_peer_search.log") as served:
            run = climb(
                served.url, "ray_peer", W1, bodies, Ladder(start_rps), duration_s, False, print
            )
        rows.append(_row(settings, run, load))
        print(rows[-1], flush=True)
    print("\n".join(_TABLE_HEAD + rows))


def _quiet(below: float, wait_s: float) -> float:
    """The one-minute load average once under ``below``, or after ``wait_s`` whatever it is."""
    deadline = time.monotonic() + wait_s
    while (load := os.getloadavg()[0]) >= below and time.monotonic() < deadline:
        time.sleep(15.0)
    return load


_TABLE_HEAD = [
    "| batch | wait ms | replicas | W1 sustainable req/s | p99 ms there | capacity req/s | load |",
    "|---:|---:|---:|---:|---:|---:|---:|",
]


def _row(settings: RayPeerSettings, run: SystemRun, load: float) -> str:
    best, capacity = run.sustainable(), run.capacity()
    sustainable = f"{best.offered_rps:.1f}" if best else "none"
    p99 = f"{best.percentile(99):.1f}" if best else "-"
    most = f"{capacity.achieved_rps:.1f}" if capacity else "none"
    return (
        f"| {settings.max_batch_size} | {settings.batch_wait_ms:g} | {settings.replicas} "
        f"| {sustainable} | {p99} | {most} | {load:.2f} |"
    )


if __name__ == "__main__":
    typer.run(main)
