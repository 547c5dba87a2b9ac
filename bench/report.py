"""docs/BENCHMARKS.md, docs/benchmarks.json and the latency-throughput plot of one bench run."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.fixture import BenchFixture
from bench.run import P99_OBJECTIVE_MS, SystemRun
from bench.workloads import Workload
from model_export.checkpoint import load_ranker
from model_export.report import machine_description

COMMAND = "make bench"
PLOT_FILE = "benchmarks.png"

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
    overload: dict[str, object] = field(default_factory=dict)  # load shedding at 3x


def machine() -> str:
    return machine_description()


def _run(report: BenchReport, system: str, workload: str) -> SystemRun | None:
    return next((r for r in report.runs if r.system == system and r.workload == workload), None)


def summarise(report: BenchReport, item_dim: int, hidden_dim: int) -> Summary:
    summary: Summary = {
        "machine": machine(),
        "command": COMMAND,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "p99_objective_ms": P99_OBJECTIVE_MS,
        "seconds_per_rate": report.duration_s,
        "service_workers": report.workers,
        "matmul_peak_gflops": round(report.peak_flops / 1e9, 2),
        "session": report.session,
        "profile": report.profile,
        "overload": report.overload,
        "wall_s": round(report.wall_s, 1),
        "load_average_before_after": [round(x, 2) for x in report.load_average],
        "workloads": {},
    }
    for workload in report.workloads:
        flops = workload.model_flops(item_dim, hidden_dim)
        entry: dict[str, object] = {
            "candidates": workload.candidates,
            "real_behaviours": workload.real,
            "generated_behaviours": workload.generated,
            "model_mflop_per_request": round(flops / 1e6, 2),
        }
        sustained: dict[str, float | None] = {}
        capacity: dict[str, float | None] = {}
        for system in ("baseline", "service"):
            run = _run(report, system, workload.name)
            if run is None:
                continue
            best = run.sustainable()
            most = run.capacity()
            sustained[system] = best.achieved_rps if best else None
            capacity[system] = most.achieved_rps if most else None
            index = run.rates.index(best) if best else None
            entry[system] = {
                "sustainable_rps": round(best.achieved_rps, 2) if best else None,
                "sustainable_offered_rps": round(best.offered_rps, 2) if best else None,
                "capacity_rps": round(most.achieved_rps, 2) if most else None,
                "rates": [r.summary() for r in run.rates],
                "stages_ms_at_sustainable": (
                    {k: round(v, 3) for k, v in run.stages_ms[index].items()}
                    if index is not None and run.stages_ms[index]
                    else None
                ),
            }
        base, service = sustained.get("baseline"), sustained.get("service")
        entry["ratio"] = round(service / base, 2) if base and service else None
        base_most, service_most = capacity.get("baseline"), capacity.get("service")
        entry["capacity_ratio"] = (
            round(service_most / base_most, 2) if base_most and service_most else None
        )
        entry["service_flops_fraction_of_peak"] = (
            round(service * flops / report.peak_flops, 4) if service else None
        )
        summary["workloads"][workload.name] = entry
    return summary


def plot(report: BenchReport, path: Path) -> None:
    figure, axes = plt.subplots(1, len(report.workloads), figsize=(6 * len(report.workloads), 4.5))
    axes = axes if len(report.workloads) > 1 else [axes]
    for axis, workload in zip(axes, report.workloads, strict=True):
        for system, colour in (("service", "tab:blue"), ("baseline", "tab:orange")):
            run = _run(report, system, workload.name)
            if run is None:
                continue
            xs = [r.achieved_rps for r in run.rates]
            for q, style in ((50, "--"), (99, "-")):
                ys = [min(r.percentile(q), 10_000.0) for r in run.rates]
                axis.plot(xs, ys, style, marker="o", color=colour, label=f"{system} p{q}")
        axis.axhline(P99_OBJECTIVE_MS, color="grey", linewidth=0.8, linestyle=":")
        axis.set_yscale("log")
        axis.set_xlabel("achieved throughput (requests/s)")
        axis.set_ylabel("latency (ms)")
        axis.set_title(
            f"{workload.name}: {workload.candidates} candidates, "
            f"{workload.real}+{workload.generated} behaviours"
        )
        axis.legend(fontsize=8)
    figure.suptitle(machine(), fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _ms(value: object) -> str:
    return "—" if value is None else f"{value}"


def markdown(summary: Summary) -> str:
    workloads: dict[str, dict[str, Any]] = summary["workloads"]
    lines = [
        "# Serving benchmark",
        "",
        f"Regenerate with `{summary['command']}` (about {round(float(summary['wall_s']) / 60)} "
        "minutes). Machine: "
        f"{summary['machine']}. Measured {summary['created_at']}; 1-minute load average "
        f"before and after the run: {summary['load_average_before_after']}.",
        "",
        "Both systems serve the same bundle (the demo ranker exported with the workloads' lengths)"
        " and the same users from the same snapshot, one after the other, on this machine, with "
        "the open-loop load generator on the same cores (Poisson arrivals, "
        f"{summary['seconds_per_rate']} s per offered rate, latency from the scheduled send "
        "time). **service**: `reaseq serve` on the embedded store "
        f"({summary['service_workers']} worker process, micro-batching, per-user cache). "
        "**baseline**: the same PyTorch checkpoint in eager mode behind a plain FastAPI "
        "endpoint, one forward per request, Python lookups (`bench/baseline.py`). A rate is "
        f"sustained when p99 ≤ {summary['p99_objective_ms']:.0f} ms and ≤ 1% of the requests sent "
        "fail.",
        "",
        f"Matrix-multiply peak measured in the same run (float32 GEMM, every core): "
        f"**{summary['matmul_peak_gflops']} GFLOP/s**.",
        "",
        "| workload | baseline sustainable (req/s) | service sustainable (req/s) | ratio | "
        "baseline capacity (req/s) | service capacity (req/s) | capacity ratio | "
        "model MFLOP/request | service model FLOP/s / peak |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in workloads.items():
        fraction = entry["service_flops_fraction_of_peak"]
        base, service = entry.get("baseline", {}), entry.get("service", {})
        lines.append(
            f"| {name} | {_ms(base.get('sustainable_rps'))} | "
            f"{_ms(service.get('sustainable_rps'))} | {_ms(entry['ratio'])}× | "
            f"{_ms(base.get('capacity_rps'))} | {_ms(service.get('capacity_rps'))} | "
            f"{_ms(entry['capacity_ratio'])}× | {entry['model_mflop_per_request']} | "
            f"{'—' if fraction is None else f'{100 * fraction:.1f}%'} |"
        )
    lines += [
        "",
        "*Sustainable*: the highest rate served with p99 within the objective; *capacity*: the "
        "highest throughput achieved at any latency with ≤ 1% failing (a rate saturates when more"
        " fail or the median passes 1 s; the ladder stops after two saturated rates in a row). "
        "The FLOP/s fraction is the model's arithmetic at the service's sustainable rate over the "
        "measured peak; — where a system sustains no rate.",
    ]
    lines += ["", *targets_markdown(summary)]
    session = summary.get("session") or {}
    if session:
        lines += [
            "",
            "## Repeated requests of one session",
            "",
            f"{session['users']} users with 1000 real + 32 generated behaviours, "
            f"{session['requests_per_session']} pages of 100 candidates each, one after the other"
            " (the later pages hit the per-user cache):",
            "",
            "| measured by | first request (median ms) | later pages (median ms) | speed-up |",
            "|---|---|---|---|",
            *(
                f"| {side} | {session[f'{side}_first_ms_median']} | "
                f"{session[f'{side}_repeat_ms_median']} | {session[f'{side}_speedup']}× |"
                for side in ("client", "server")
            ),
            "",
            "*client*: the whole HTTP round trip on loopback; *server*: the service's own "
            "`timings_ms.total` (fetch to ranking, without HTTP).",
        ]
    overloaded = summary.get("overload") or {}
    if overloaded:
        admission = ", ".join(f"`{k}={v}`" for k, v in overloaded["admission"].items())
        lines += [
            "",
            "## Overload and load shedding",
            "",
            f"{overloaded['factor']}× the service's sustainable {overloaded['workload']} rate "
            f"({overloaded['offered_rps']} req/s offered) to a service with tight admission "
            f"limits ({admission}): {overloaded['accepted']} of {overloaded['sent']} requests "
            f"accepted ({overloaded['accepted_rps']} req/s), {overloaded['shed']} shed with 429 "
            f"and `Retry-After`, {overloaded['failed_otherwise']} failed otherwise; the accepted "
            f"ones answered with p50 **{overloaded['accepted_p50_ms']} ms** and p99 "
            f"**{overloaded['accepted_p99_ms']} ms** (objective {summary['p99_objective_ms']:.0f}"
            " ms).",
        ]
    profile = summary.get("profile") or {}
    if profile:
        lines += [
            "",
            f"## Where the service's CPU goes ({profile['workload']} at "
            f"{profile['offered_rps']} req/s offered)",
            "",
            "py-spy samples of the service process during the run (self time by function, "
            "share of the busy samples; waits for work, sockets and locks left out):",
            "",
            "| function | share |",
            "|---|---|",
            *(f"| `{name}` | {100 * share:.1f}% |" for name, share in profile["top_self_time"]),
        ]
    lines += ["", f"![latency against throughput]({PLOT_FILE})", ""]
    for name, entry in workloads.items():
        lines += [f"## {name}", ""]
        for system in ("service", "baseline"):
            run = entry.get(system)
            if not run:
                continue
            lines += [
                f"**{system}**",
                "",
                "| offered req/s | achieved req/s | p50 ms | p95 ms | p99 ms | failed |",
                "|---|---|---|---|---|---|",
            ]
            for rate in run["rates"]:
                lines.append(
                    f"| {rate['offered_rps']} | {rate['achieved_rps']} | {_ms(rate['p50_ms'])} | "
                    f"{_ms(rate['p95_ms'])} | {_ms(rate['p99_ms'])} | {rate['failed']} |"
                )
            lines.append("")
        stages = (entry.get("service") or {}).get("stages_ms_at_sustainable")
        if stages:
            lines += [
                "Where the service's time goes at its sustainable rate (server-side mean ms per "
                "request: a batch's stage time divided over the requests in it):",
                "",
                "| " + " | ".join(stages) + " |",
                "|" + "---|" * len(stages),
                "| " + " | ".join(f"{v:.3f}" for v in stages.values()) + " |",
                "",
            ]
    return "\n".join(lines)


def write_report(report: BenchReport, fixture: BenchFixture, docs_dir: Path) -> list[Path]:
    docs_dir.mkdir(parents=True, exist_ok=True)
    shape = load_ranker(fixture.model_dir).shape
    summary = summarise(report, shape.item_dim, shape.hidden_dim)
    json_path = docs_dir / "benchmarks.json"
    json_path.write_text(json.dumps(summary, indent=2) + "\n")
    plot_path = docs_dir / PLOT_FILE
    plot(report, plot_path)
    md_path = docs_dir / "BENCHMARKS.md"
    md_path.write_text(markdown(summary))
    return [md_path, json_path, plot_path]


def _check(value: float | None, goal: float, higher: bool = True) -> str:
    if value is None:
        return "not measured"
    met = value >= goal if higher else value <= goal
    return "met" if met else "**missed**"


def targets_markdown(summary: Summary) -> list[str]:
    """The service's performance targets against this run's figures."""
    workloads: dict[str, dict[str, Any]] = summary["workloads"]
    w1, w2 = workloads.get("W1", {}), workloads.get("W2", {})
    session: dict[str, Any] = summary.get("session") or {}
    overloaded: dict[str, Any] = summary.get("overload") or {}
    w2_ratio = w2.get("ratio") or w2.get("capacity_ratio")
    w2_basis = "sustainable" if w2.get("ratio") else "capacity (the baseline sustains no rate)"
    fraction = w1.get("service_flops_fraction_of_peak")
    rows = [
        ("W1: service / baseline, sustainable rate", "≥ 4×", w1.get("ratio"), 4.0, True, "×"),
        ("W1: model FLOP/s at that rate / matmul peak", "≥ 30%",
         None if fraction is None else 100 * fraction, 30.0, True, "%"),
        (f"W2: service / baseline, {w2_basis}", "≥ 3×", w2_ratio, 3.0, True, "×"),
        ("Session: later pages / first request (client)", "≥ 1.5×",
         session.get("client_speedup"), 1.5, True, "×"),
        ("3× overload: p99 of accepted requests", "≤ 50 ms",
         overloaded.get("accepted_p99_ms"), 50.0, False, " ms"),
    ]  # fmt: skip
    lines = [
        "## Against the targets",
        "",
        "| target | goal | this run | |",
        "|---|---|---|---|",
    ]
    for name, goal_text, value, goal, higher, unit in rows:
        shown = "—" if value is None else f"{value:.3g}{unit}"
        lines.append(f"| {name} | {goal_text} | {shown} | {_check(value, goal, higher)} |")
    lines += [
        "",
        "What stands between these figures and the missed goals, from the profile below and the "
        "stage times: at W1 the model is about 97 MFLOP, so 30% of a two-core matmul peak means "
        "several hundred requests per second, about 2 ms of CPU per request end to end, while "
        "the HTTP, JSON and Python work around the model alone costs a few milliseconds per "
        "request on these cores. Target attention is bound by its softmax (exponentials over "
        "candidates × behaviours × heads logits, at K=16 head dimension a few multiply-adds "
        "each), not by matrix multiplies; onnxruntime's fused softmax already runs it three "
        "times faster than NumPy. Closing the gap needs a fused attention kernel in native code "
        "(logits, softmax and pooling per block of candidates without writing the logits to "
        "memory) and less per-request Python (a compiled request path, or more requests per "
        "batch from a proxy that batches upstream). The session speed-up is bounded by the same "
        "per-request overhead: a cache hit skips the user encoder (about a third of the model "
        "time of a 100-candidate page over 1000 behaviours), not the HTTP, parsing, fetch of the "
        "candidates and scoring that every page pays.",
    ]
    return lines
