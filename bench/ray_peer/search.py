"""``python -m bench.ray_peer.search``: the peer's W1 rates under each of ``SEARCH_GRID``'s
settings, one after the other, printed as the table of the package's docstring.

Run it on a quiet machine (the load average is printed with each row), on a bench fixture
already built (``bench.fixture.build_fixture``).
"""

from __future__ import annotations

import os
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
) -> None:
    fixture = BenchFixture(root, model_dir=Path())  # the model is the baseline's, not needed
    bodies = fixture.requests(W1)
    rows = []
    for settings in SEARCH_GRID:
        load = os.getloadavg()[0]
        command, env = ray_peer_command(fixture.bundle_dir, fixture.users_path, settings)
        with process_on_port(command, env, root / "ray_peer_search.log") as served:
            run = climb(
                served.url, "ray_peer", W1, bodies, Ladder(start_rps), duration_s, False, print
            )
        rows.append(_row(settings, run, load))
        print(rows[-1], flush=True)
    print("\n".join(_TABLE_HEAD + rows))


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
