"""``python -m loadtest``: a bounded, headless Locust run with reports and pass/fail gates.

Starts the service on the bundle (unless ``--target-url`` names a running one), scrapes its
``/metrics`` before and after, runs Locust headless, and writes into the report folder Locust's
CSV and HTML reports, a plot of latency and throughput over time, and ``summary.md`` with
client-side and server-side percentiles. Exits 1 when a gate fails.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from loadtest.experiment import experiment_env
from loadtest.locust_results import client_view, history
from loadtest.plot import plot_history
from loadtest.report import Gates, RunDescription, check_gates, write_report
from loadtest.server_metrics import Scrape, server_view
from loadtest.service_process import local_service, wait_ready
from loadtest.shapes import LoadShape

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
CSV_PREFIX = "locust"
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")

app = typer.Typer(add_completion=False, help=__doc__)


def duration_seconds(text: str) -> int:
    """``90``, ``30s``, ``2m``, ``1h30m`` as seconds."""
    if text.isdigit():
        return int(text)
    match = _DURATION.match(text)
    if not text or match is None:
        raise typer.BadParameter(f"{text!r}: use e.g. 30s, 2m, 1h30m")
    hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def locust_command(
    url: str, seconds: int, users: int, spawn_rate: float, shape: LoadShape, folder: Path,
    traffic: list[str],
) -> list[str]:  # fmt: skip
    return [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", url,
        "--users", str(users), "--spawn-rate", str(spawn_rate), "--run-time", f"{seconds}s",
        "--load-shape", shape.value, "--csv", str(folder / CSV_PREFIX), "--csv-full-history",
        "--html", str(folder / "locust.html"), "--only-summary", "--exit-code-on-error", "0",
        "--stop-timeout", "5", *traffic,
    ]  # fmt: skip


@app.command()
def main(
    target_url: Annotated[
        str | None, typer.Option(envvar="TARGET_URL", help="A running service; default: start one.")
    ] = None,
    bundle_root: Annotated[Path, typer.Option(help="Bundle folder (with CURRENT).")] = Path(
        "bundles"
    ),
    users_path: Annotated[
        Path, typer.Option(help="Embedded user snapshot (users to draw; the store to serve).")
    ] = Path("var/demo/users.npz"),
    duration: Annotated[str, typer.Option(help="Run time: 30s, 2m, ...")] = "30s",
    users: Annotated[int, typer.Option(min=1, help="Simulated users (peak).")] = 20,
    spawn_rate: Annotated[float, typer.Option(min=0.1, help="Users started per second.")] = 10.0,
    shape: Annotated[LoadShape, typer.Option(help="Load shape.")] = LoadShape.soak,
    candidates: Annotated[str, typer.Option(help="fixed:N, uniform:LO:HI, lognormal:MED:SD")] = (
        "uniform:50:500"
    ),
    zipf_exponent: Annotated[float, typer.Option(help="User popularity skew.")] = 1.1,
    recent_events_ratio: Annotated[float, typer.Option(min=0, max=1)] = 0.2,
    explain_ratio: Annotated[float, typer.Option(min=0, max=1)] = 0.05,
    top_k: Annotated[int, typer.Option(min=0, help="0 = return all.")] = 100,
    report_dir: Annotated[Path, typer.Option(help="Where reports go.")] = Path("var/loadtest"),
    gate_p99_ms: Annotated[float, typer.Option(help="Fail above this client p99.")] = 250.0,
    gate_failure_ratio: Annotated[
        float, typer.Option(help="Fail above this ratio of failures other than 429.")
    ] = 0.01,
    gate_shed_ratio: Annotated[
        float, typer.Option(help="Fail above this ratio of requests shed with 429.")
    ] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed of the traffic.")] = 0,
    experiment: Annotated[
        str | None,
        typer.Option(
            help="A second bundle version under the bundle root: serve it beside the current one "
            "as a 50/50 experiment (a local service only); every arm must answer."
        ),
    ] = None,
) -> None:
    """Run the load test and write its reports; exit 1 when a gate fails."""
    seconds = duration_seconds(duration)
    report_dir.mkdir(parents=True, exist_ok=True)
    traffic = [
        "--bundle-root", str(bundle_root), "--users-path", str(users_path),
        "--candidates", candidates, "--zipf-exponent", str(zipf_exponent),
        "--recent-events-ratio", str(recent_events_ratio), "--explain-ratio", str(explain_ratio),
        "--top-k", str(top_k), "--traffic-seed", str(seed),
    ]  # fmt: skip
    extra_env = _experiment_env(bundle_root, experiment, report_dir, target_url)
    service = (
        nullcontext(target_url.rstrip("/"))
        if target_url
        else local_service(
            bundle_root,
            users_path if users_path.is_file() else None,
            report_dir / "service.log",
            extra_env=extra_env,
        )
    )
    with service as url:
        if target_url:
            wait_ready(url, None, deadline_s=30)
        before = Scrape.fetch(url)
        command = locust_command(url, seconds, users, spawn_rate, shape, report_dir, traffic)
        with open(report_dir / "locust.log", "wb") as log:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0:
            typer.echo(
                f"locust exited {done.returncode}: see {report_dir / 'locust.log'}", err=True
            )
            raise typer.Exit(2)
        after = Scrape.fetch(url)
    client = client_view(report_dir / CSV_PREFIX)
    server = server_view(before, after)
    plot_history(
        history(report_dir / CSV_PREFIX),
        report_dir / "latency.png",
        f"/v1/rank, {shape.value}, {users} users",
    )
    results = check_gates(Gates(gate_p99_ms, gate_failure_ratio, gate_shed_ratio), client)
    if experiment is not None and len(server.arms) < 2:
        typer.echo(f"the experiment's arms did not all answer: {server.arms}", err=True)
        raise typer.Exit(1)
    run = RunDescription(
        command=shlex.join(["python", "-m", "loadtest", *sys.argv[1:]]),
        target=target_url or "a local service on the bundle",
        shape=shape.value,
        duration=duration,
        users=users,
        spawn_rate=spawn_rate,
        candidates=candidates,
    )
    summary = write_report(report_dir, run, client, server, results)
    typer.echo(summary.read_text())
    if not all(r.passed for r in results):
        failed = ", ".join(
            f"{r.name} {r.measured:.4g} > {r.limit:g}" for r in results if not r.passed
        )
        typer.echo(f"gates failed: {failed}", err=True)
        raise typer.Exit(1)


def _experiment_env(
    bundle_root: Path, second_version: str | None, report_dir: Path, target_url: str | None
) -> dict[str, str]:
    if second_version is None:
        return {}
    if target_url:
        raise typer.BadParameter("--experiment starts a local service: drop TARGET_URL")
    try:
        return experiment_env(bundle_root, second_version, report_dir)
    except (FileNotFoundError, OSError) as error:
        raise typer.BadParameter(str(error)) from error
