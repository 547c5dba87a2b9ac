"""``python -m bench.experiment_overhead`` (``make bench-experiment``): what serving an experiment
costs, written to docs/EXPERIMENT_OVERHEAD.md and docs/experiment_overhead.json.

Configurations of the service on ``make bench``'s W1 fixture, in rotated rounds: ``single``
serves the bench bundle alone; ``experiment`` serves the same process with an experiment of two
arms on two bundles loaded side by side (the bench bundle and a second export of the same ranker,
50/50 by user), every answer written to the prediction log; ``single_again`` is ``single`` once
more, the noise floor. Each is offered the same fixed rates below saturation, where the figure
compared is the CPU time of the service's processes per answered request (continuous, unlike a
sustainable rate found on a ×1.4 ladder), with the latency percentiles beside it; then one rate
past saturation, where it is the requests answered per second (the capacity). The two arms'
scores are checked against the single bundle's before timing: the experiment must do the same
work.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import aiohttp
import typer
from rich.console import Console

from bench.experiment_toggle import OFF, OFF_AGAIN, ON, overhead, ratio, toggled
from bench.experiment_work import added_work_us
from bench.fixture import BenchFixture, build_fixture, export_version
from bench.loadgen import offer
from bench.report import machine
from bench.run import process_on_port, service_command
from bench.systems import answers, max_score_difference, parity_bodies, tree_cpu_seconds
from bench.workloads import W1

console = Console(stderr=True)
app = typer.Typer(add_completion=False, help=__doc__)

SECOND_VERSION = "bench-b"
EXPERIMENT_NAME = "overhead"
SINGLE, SINGLE_AGAIN, EXPERIMENT = "single", "single_again", "experiment"
#: Every configuration, in the order of the first round (later rounds rotate it).
CONFIGURATIONS = (SINGLE, EXPERIMENT, SINGLE_AGAIN)
#: The overhead the experiment may add to the single bundle's CPU per request.
OVERHEAD_GOAL = 0.05
_WARM_UP_S = 2.0


@dataclass
class Measured:
    """One configuration at one offered rate in one round."""

    configuration: str
    round: int
    offered_rps: float
    ok: int
    failed: int
    cpu_ms: float | None
    p50_ms: float | None
    p99_ms: float | None
    #: Requests answered 200 per second (at an offered rate past saturation: the capacity).
    answered_rps: float = 0.0


def experiment_config(fixture: BenchFixture) -> dict[str, object]:
    return {
        "name": EXPERIMENT_NAME,
        "version": 1,
        "salt": "bench",
        "arms": [
            {"name": "a", "bundle": fixture.bundle_dir.name, "share": 0.5},
            {"name": "b", "bundle": SECOND_VERSION, "share": 0.5},
        ],
    }


def configurations(fixture: BenchFixture) -> dict[str, tuple[list[str], dict[str, str]]]:
    """How each configuration is started."""
    command, env = service_command(fixture, 1)
    config_path = fixture.root / "experiment.json"
    config_path.write_text(json.dumps(experiment_config(fixture), indent=2))
    log_dir = fixture.root / "predictions"
    experiment_env = env | {
        "REASEQ_EXPERIMENT_FILE": str(config_path),
        "REASEQ_PREDICTION_LOG": "experiment",
        "REASEQ_PREDICTION_LOG_SINK": "file",
        "REASEQ_PREDICTION_LOG_DIR": str(log_dir),
    }
    return {
        SINGLE: (command, env),
        EXPERIMENT: (command, experiment_env),
        SINGLE_AGAIN: (command, env),
    }


async def _arms(url: str, bodies: list[bytes]) -> Counter[str]:
    seen: Counter[str] = Counter()
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession() as session:
        for body in bodies:
            async with session.post(f"{url}/v1/rank", data=body, headers=headers) as response:
                response.raise_for_status()
                seen[str((await response.json()).get("arm"))] += 1
    return seen


def _measure(
    name: str, url: str, pid: int, bodies: list[bytes], rate: float, duration_s: float, round_: int
) -> Measured:
    cpu_before = tree_cpu_seconds(pid)
    result = asyncio.run(offer(f"{url}/v1/rank", bodies, rate, duration_s, seed=round_))
    cpu = 1000.0 * (tree_cpu_seconds(pid) - cpu_before) / result.ok if result.ok else None
    summary = result.summary()
    return Measured(
        name, round_, rate, result.ok, result.failed, cpu,
        summary["p50_ms"], summary["p99_ms"], result.achieved_rps,  # type: ignore[arg-type]
    )  # fmt: skip


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def capacities(measured: list[Measured], rate: float) -> dict[str, Any]:
    """Median over rounds of the requests each configuration answered per second when offered
    ``rate`` (past saturation: the rest is shed with 429), and the experiment's over single's."""
    found: dict[str, Any] = {}
    for name in CONFIGURATIONS:
        runs = [
            m.answered_rps for m in measured if m.configuration == name and m.offered_rps == rate
        ]
        found[name] = _round(_median(list(runs)), 2)
    found["ratio"] = ratio(found[EXPERIMENT], found[SINGLE])
    found["noise_ratio"] = ratio(found[SINGLE_AGAIN], found[SINGLE])
    return found


def summarise(measured: list[Measured], rates: list[float]) -> dict[str, Any]:
    """Median over rounds of each configuration at each rate; the experiment's overhead in CPU
    per request (the median over rates of the per-rate ratios to ``single``, less one), and the
    same for ``single_again``, the same configuration as ``single``: the noise floor."""
    per_rate = []
    for rate in rates:
        row: dict[str, Any] = {"offered_rps": rate}
        for name in CONFIGURATIONS:
            runs = [m for m in measured if m.configuration == name and m.offered_rps == rate]
            row[name] = {
                "cpu_ms": _round(_median([m.cpu_ms for m in runs])),
                "p50_ms": _round(_median([m.p50_ms for m in runs])),
                "p99_ms": _round(_median([m.p99_ms for m in runs])),
                "failed": sum(m.failed for m in runs),
                "answered": sum(m.ok for m in runs),
            }
        row["cpu_ratio"] = ratio(row[EXPERIMENT]["cpu_ms"], row[SINGLE]["cpu_ms"])
        row["noise_ratio"] = ratio(row[SINGLE_AGAIN]["cpu_ms"], row[SINGLE]["cpu_ms"])
        per_rate.append(row)
    return {
        "per_rate": per_rate,
        "cpu_overhead": overhead([r["cpu_ratio"] for r in per_rate]),
        "noise": overhead([r["noise_ratio"] for r in per_rate]),
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def markdown(report: dict[str, Any]) -> str:
    cpu_overhead = report["summary"]["cpu_overhead"]
    verdict = _verdict(cpu_overhead, report["summary"]["noise"])
    lines = [
        "# What an experiment costs",
        "",
        f"Regenerate with `make bench-experiment` (`python -m bench.experiment_overhead "
        f"{report['args']}`); {report['machine']}; {report['rounds']} interleaved rounds of "
        f"{report['duration_s']:g} s per rate; {report['wall_s']:.0f} s in all.",
        "",
        "`single`: the service on `make bench`'s W1 fixture (500 candidates, 256 real and 16 "
        "generated behaviours per user). `experiment`: the same process with an experiment of "
        "two arms on two bundles loaded side by side (50/50 by user) and every answer written to "
        "the prediction log. Before timing, the arms' scores were checked against the single "
        f"bundle's: largest difference {report['parity']:.2g}; arms answered in the check: "
        f"{report['arm_split']}.",
        "",
        "`single_again` is `single` once more, started anew in the same rounds: how far two "
        "runs of the same configuration differ here (the noise floor).",
        "",
        "| offered req/s | CPU ms/request single | experiment | single again | experiment / "
        "single | single again / single | p50 ms single | experiment | p99 ms single | "
        "experiment | failed single / experiment |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["summary"]["per_rate"]:
        s, e, a = row[SINGLE], row[EXPERIMENT], row[SINGLE_AGAIN]
        lines.append(
            f"| {row['offered_rps']:g} | {s['cpu_ms']} | {e['cpu_ms']} | {a['cpu_ms']} | "
            f"{row['cpu_ratio']} | {row['noise_ratio']} | {s['p50_ms']} | {e['p50_ms']} | "
            f"{s['p99_ms']} | {e['p99_ms']} | {s['failed']} / {e['failed']} |"
        )
    noise = report["summary"]["noise"]
    lines += [
        "",
        f"CPU per request of the experiment over the single bundle (median over rates of the "
        f"per-rate ratios of round medians): **{_percent(cpu_overhead)}**, {verdict}; the same "
        f"configuration run twice differs by {_percent(noise)}.",
        "",
    ]
    toggle = report.get("toggled")
    if toggle:
        lines += _toggled_lines(toggle, report["rounds"])
    added = report.get("added_work_us")
    single_cpu = _median([row[SINGLE]["cpu_ms"] for row in report["summary"]["per_rate"]])
    if added is not None and single_cpu:
        lines += [
            f"The work an experiment adds to each answer, timed in one process "
            f"(`bench/experiment_work.py`: assignment, the arm's metrics, the prediction-log "
            f"record and its serialisation): **{added:.1f} µs**, "
            f"{100 * added / (1000 * single_cpu):.2f}% of single's CPU per request (median over "
            "rates).",
            "",
        ]
    capacity = report.get("capacity")
    if capacity:
        lines += [
            f"Past saturation ({capacity['offered_rps']:g} req/s offered, the rest shed with "
            f"429), requests answered per second (medians): single {capacity[SINGLE]}, "
            f"experiment {capacity[EXPERIMENT]}, single again {capacity[SINGLE_AGAIN]}: the "
            f"experiment answers {_percent(_less_one(capacity['ratio']))} against single "
            f"(single again: {_percent(_less_one(capacity['noise_ratio']))}).",
            "",
        ]
    return "\n".join(lines)


def _toggled_lines(toggle: dict[str, Any], rounds: int) -> list[str]:
    shown = ", ".join(
        f"{row['offered_rps']:g} req/s {row[OFF]} → {row[ON]} ms (off again "
        f"{row.get(OFF_AGAIN, '—')})"
        for row in toggle["per_rate"]
    )
    noise = toggle.get("noise")
    lines = [
        "In one process, the experiment switched off and on in turn (`DELETE` and `PUT "
        f"/v1/admin/experiment`, `bench/experiment_toggle.py`, {rounds} rounds of off, on and "
        "off again in rotated order, the same rates, each state measured after a warm-up), CPU "
        f"per request off → on: {shown}; the experiment's overhead "
        f"**{_percent(toggle['cpu_overhead'])}**, {_verdict(toggle['cpu_overhead'], noise)}"
        + (f"; off again against off: {_percent(noise)}." if noise is not None else "."),
        "",
    ]
    warm_up = toggle.get("warm_up_cpu_ms") or {}
    if warm_up.get(ON) and warm_up.get(OFF):
        lines += [
            f"The warm-up right after a switch, measured on its own: {warm_up[ON]} ms CPU per "
            f"request after switching on (the bundles freshly loaded), {warm_up[OFF]} ms after "
            f"switching off ({_percent(warm_up[ON] / warm_up[OFF] - 1.0)}): a one-off cost of "
            "loading an experiment, left out of the overhead above.",
            "",
        ]
    return lines


def _verdict(overhead: float | None, noise: float | None) -> str:
    """Against the goal, unless two runs of one configuration differ by as much as the goal."""
    goal = f"the {100 * OVERHEAD_GOAL:.0f}% goal"
    if overhead is None:
        return "not measured"
    if noise is not None and abs(noise) >= OVERHEAD_GOAL:
        return f"not resolved against {goal} on this machine (the noise floor is as large)"
    return ("within " if overhead <= OVERHEAD_GOAL else "**over** ") + goal


def _less_one(ratio: float | None) -> float | None:
    return None if ratio is None else ratio - 1.0


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:+.1f}%"


@app.command()
def main(
    demo_dir: Annotated[Path, typer.Option(help="Output of `reaseq demo`.")] = Path("var/demo"),
    work_dir: Annotated[Path, typer.Option(help="Bench bundles, users and logs.")] = Path(
        "var/bench"
    ),
    docs_dir: Annotated[Path, typer.Option(help="Where the report goes.")] = Path("docs"),
    rates: Annotated[str, typer.Option(help="Offered rates, req/s, comma-separated.")] = (
        "20,35,50"
    ),
    duration_s: Annotated[float, typer.Option(help="Seconds per rate.")] = 10.0,
    saturating_rps: Annotated[
        float, typer.Option(help="An offered rate past saturation, for the capacity (0: none).")
    ] = 400.0,
    rounds: Annotated[int, typer.Option(min=1, help="Interleaved rounds.")] = 3,
) -> None:
    started = time.perf_counter()
    offered = [float(r) for r in rates.split(",")]
    fixture = build_fixture(work_dir, demo_dir / "model", demo_dir / "data", [W1])
    if not (fixture.bundles / SECOND_VERSION).is_dir():
        export_version(fixture, demo_dir / "data", [W1], SECOND_VERSION)
    bodies = fixture.requests(W1)
    started_as = configurations(fixture)
    parity, split = _check(fixture, started_as, bodies)
    measured: list[Measured] = []
    for round_ in range(rounds):
        shift = round_ % len(CONFIGURATIONS)
        order = CONFIGURATIONS[shift:] + CONFIGURATIONS[:shift]
        for name in order:
            command, env = started_as[name]
            log_path = work_dir / f"overhead-{name}-{round_}.log"
            with process_on_port(command, env, log_path) as served:
                asyncio.run(offer(f"{served.url}/v1/rank", bodies, offered[0], _WARM_UP_S, 99))
                for rate in [*offered, *([saturating_rps] if saturating_rps else [])]:
                    m = _measure(name, served.url, served.pid, bodies, rate, duration_s, round_)
                    measured.append(m)
                    console.print(f"{name} round {round_} {rate:g} req/s: {m}")
                    time.sleep(1.0)
    toggle = toggled(
        fixture,
        experiment_config(fixture),
        offered,
        rounds,
        duration_s,
        _WARM_UP_S,
        lambda state, url, pid, rate, round_, seconds: _measure(
            state, url, pid, bodies, rate, seconds, round_
        ),
    )
    console.print(f"experiment switched on and off in one process: {toggle}")
    report = {
        "machine": machine(),
        "args": f"--rates {rates} --duration-s {duration_s:g} --rounds {rounds} "
        f"--saturating-rps {saturating_rps:g}",
        "rounds": rounds,
        "duration_s": duration_s,
        "wall_s": time.perf_counter() - started,
        "load_average": os.getloadavg()[0],
        "parity": parity,
        "arm_split": dict(split),
        "measured": [m.__dict__ for m in measured],
        "summary": summarise(measured, offered),
        "toggled": toggle,
        "added_work_us": round(added_work_us(experiment_config(fixture), bodies[0]), 2),
        "capacity": (
            capacities(measured, saturating_rps) | {"offered_rps": saturating_rps}
            if saturating_rps
            else None
        ),
    }
    docs_dir.mkdir(parents=True, exist_ok=True)
    (docs_dir / "experiment_overhead.json").write_text(json.dumps(report, indent=2) + "\n")
    (docs_dir / "EXPERIMENT_OVERHEAD.md").write_text(markdown(report))
    console.print(f"wrote {docs_dir / 'EXPERIMENT_OVERHEAD.md'}")


def _check(
    fixture: BenchFixture,
    started_as: dict[str, tuple[list[str], dict[str, str]]],
    bodies: list[bytes],
) -> tuple[float, Counter[str]]:
    """The experiment's largest score difference from the single bundle, and how many of the
    first requests each arm answered."""
    checked = parity_bodies(bodies)
    found = {}
    split: Counter[str] = Counter()
    for name in (SINGLE, EXPERIMENT):
        command, env = started_as[name]
        with process_on_port(command, env, fixture.root / f"overhead-{name}-parity.log") as s:
            found[name] = answers(s.url, checked)
            if name == EXPERIMENT:
                split = asyncio.run(_arms(s.url, bodies[:200]))
    difference = max_score_difference(found[SINGLE], found[EXPERIMENT])
    if difference > 1e-4 or len(split) < 2:
        raise typer.BadParameter(
            f"the experiment does not serve the same work: score difference {difference:.3g}, "
            f"arms seen {dict(split)}"
        )
    return difference, split


if __name__ == "__main__":
    app()
