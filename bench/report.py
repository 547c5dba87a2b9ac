"""docs/BENCHMARKS.md, docs/benchmarks.json and the latency-throughput plot of one bench run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.fixture import BenchFixture
from bench.overload_report import overload_section
from bench.run import P99_OBJECTIVE_MS
from bench.steal import percent, stolen_lines
from bench.summary import MODEL_STAGES, BenchReport, Summary, summarise
from bench.systems import BASELINE, RAY_SERVE, SERVICE, SERVICE_SELF_ATTENTION
from bench.tail import OVERLAPS, PARTS, tail_reading
from bench.targets import targets_markdown
from model_export.checkpoint import load_ranker
from model_export.report import machine_description

PLOT_FILE = "benchmarks.png"
#: Systems in the order the tables show them.
ORDER = (SERVICE, SERVICE_SELF_ATTENTION, RAY_SERVE, BASELINE)
COLOURS = {
    SERVICE: "tab:blue",
    SERVICE_SELF_ATTENTION: "tab:green",
    RAY_SERVE: "tab:red",
    BASELINE: "tab:orange",
}

__all__ = ["BenchReport", "markdown", "plot", "summarise", "write_report"]


def machine() -> str:
    return machine_description()


def _systems(entry: dict[str, Any]) -> list[str]:
    return [name for name in ORDER if name in entry]


def plot(report: BenchReport, path: Path) -> None:
    """p50 and p99 against throughput, per workload, for each system's first round."""
    figure, axes = plt.subplots(1, len(report.workloads), figsize=(6 * len(report.workloads), 4.5))
    axes = axes if len(report.workloads) > 1 else [axes]
    for axis, workload in zip(axes, report.workloads, strict=True):
        for system in ORDER:
            runs = [r for r in report.runs if r.system == system and r.workload == workload.name]
            if not runs:
                continue
            run = min(runs, key=lambda r: r.round)
            xs = [r.achieved_rps for r in run.rates]
            for q, style in ((50, "--"), (99, "-")):
                ys = [min(r.percentile(q), 10_000.0) for r in run.rates]
                axis.plot(xs, ys, style, marker="o", color=COLOURS[system], label=f"{system} p{q}")
        axis.axhline(P99_OBJECTIVE_MS, color="grey", linewidth=0.8, linestyle=":")
        axis.set_yscale("log")
        axis.set_xlabel("achieved throughput (requests/s)")
        axis.set_ylabel("latency (ms)")
        axis.set_title(
            f"{workload.name}: {workload.candidates} candidates, "
            f"{workload.real}+{workload.generated} behaviours"
        )
        axis.legend(fontsize=7)
    figure.suptitle(machine(), fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _robbed(summary: dict[str, Any]) -> str:
    """The re-climbing rule of the run, when it had one."""
    share = summary.get("robbed_share")
    if share is None:
        return ""
    return (
        f"; a round during which the hypervisor stole more than {100 * share:.0f}% of the "
        f"machine's CPU is climbed again after the others (at most {summary['extra_passes']} "
        "more passes over the systems short of clean rounds), and the medians take each "
        f"system's {summary.get('rounds', 1)} least robbed rounds (all rounds are listed under "
        '"CPU stolen by the hypervisor")'
    )


def _priority(summary: dict[str, Any]) -> str:
    """How the systems' CPU priority stands to the load generator's (nothing for a summary
    written before the setting existed)."""
    niceness = summary.get("system_niceness")
    below = f"; every system runs at niceness +{niceness}, below the load generator, so that"
    why = " the generator, as on a machine of its own, sends and reads on time and its lateness"
    return f"{below}{why} is not counted as the system's" if niceness else ""


def _knee(summary: dict[str, Any]) -> str:
    """How the ladder's rates rise, and the rate added at its knee."""
    factor = summary.get("ladder_factor")
    knee = ", halves that step where the sustainable rate lies"
    middle = "one more rate, at the geometric middle between the highest sustained and the next"
    return f". Rates rise by ×{factor}; {middle} rate offered{knee}" if factor else ""


def _v(value: object, suffix: str = "") -> str:
    return "—" if value is None else f"{value}{suffix}"


def _spread(values: list[float]) -> str:
    return f"{values[0]:g}–{values[1]:g}"


def _systems_table(workloads: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| workload | system | sustainable req/s (median) | over rounds | capacity req/s "
        "(median) | over rounds | CPU ms per request at sustainable |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, entry in workloads.items():
        for system in _systems(entry):
            row = entry[system]
            lines.append(
                f"| {name} | {system} | {_v(row['sustainable_rps'])} | "
                f"{_spread(row['sustainable_spread'])} | {_v(row['capacity_rps'])} | "
                f"{_spread(row['capacity_spread'])} | {_v(row['cpu_ms_per_request'])} |"
            )
    return lines


def _ratios_table(workloads: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| workload | service / Ray Serve, sustainable | capacity | Ray Serve CPU / service CPU "
        "| service / baseline, sustainable | capacity | model MFLOP/request "
        "| service model FLOP/s / peak |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in workloads.items():
        fraction = entry["service_flops_fraction_of_peak"]
        lines.append(
            f"| {name} | {_v(entry['ratio_ray_serve'], '×')} | "
            f"{_v(entry['capacity_ratio_ray_serve'], '×')} | "
            f"{_v(entry['cpu_ratio_ray_serve'], '×')} | {_v(entry['ratio_baseline'], '×')} | "
            f"{_v(entry['capacity_ratio_baseline'], '×')} | {entry['model_mflop_per_request']} | "
            f"{'—' if fraction is None else f'{100 * fraction:.1f}%'} |"
        )
    return lines


def _session_lines(sessions: dict[str, dict[str, float]]) -> list[str]:
    if not sessions:
        return []
    first = next(iter(sessions.values()))
    lines = [
        "",
        "## Repeated requests of one session",
        "",
        f"{first['users']} users with 1000 real + 32 generated behaviours, "
        f"{first['requests_per_session']} pages of 100 candidates each, one after the other"
        " (the later pages hit the per-user cache), on each service bundle:",
        "",
        "| system | measured by | first request (median ms) | later pages (median ms) | speed-up |",
        "|---|---|---|---|---|",
    ]
    for system, session in sessions.items():
        for side in ("client", "server"):
            lines.append(
                f"| {system} | {side} | {session[f'{side}_first_ms_median']} | "
                f"{session[f'{side}_repeat_ms_median']} | {session[f'{side}_speedup']}× |"
            )
    lines += [
        "",
        "*client*: the whole HTTP round trip on loopback; *server*: the service's own "
        "`timings_ms.total` (fetch to ranking, without HTTP).",
    ]
    return lines


def _ladder_lines(name: str, entry: dict[str, Any]) -> list[str]:
    lines = [f"## {name}", ""]
    for system in _systems(entry):
        row = entry[system]
        chosen = next(r for r in row["rounds"] if r["round"] == row["median_round"])
        lines += [
            f"**{system}** (round {chosen['round']}, the median one; load average before and "
            f"after {chosen['load_average']}; CPU stolen over the ladder "
            f"{percent(chosen.get('cpu_stolen_share'))})",
            "",
            "| offered req/s | achieved req/s | p50 ms | p95 ms | p99 ms | failed | CPU ms/request "
            "| generator lag p99 ms | CPU stolen |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for rate in chosen["rates"]:
            lines.append(
                f"| {rate['offered_rps']} | {rate['achieved_rps']} | {_v(rate['p50_ms'])} | "
                f"{_v(rate['p95_ms'])} | {_v(rate['p99_ms'])} | {rate['failed']} | "
                f"{_v(rate['cpu_ms_per_request'])} | {_v(rate.get('send_lag_p99_ms'))} | "
                f"{percent(rate.get('cpu_stolen_share'))} |"
            )
        lines.append("")
        stages = row.get("stages_ms_at_sustainable")
        if stages:
            lines += [
                f"Where {system}'s time goes at its sustainable rate (server-side mean ms per "
                "request: a batch's stage time divided over the requests in it):",
                "",
                *_table(list(stages), [[f"{v:.3f}" for v in stages.values()]]),
                "",
            ]
    return lines


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _tail_lines(workloads: dict[str, dict[str, Any]]) -> list[str]:
    """Per workload and service system (median round): the tail breakdown at the sustainable
    rate and at capacity, and what it says."""
    tables, readings = [], []
    columns = ("client", *PARTS, *OVERLAPS, "batch")
    for name, entry in workloads.items():
        for system in (SERVICE, SERVICE_SELF_ATTENTION):
            row = entry.get(system) or {}
            for where, key in (("sustainable rate", "tail_at_sustainable"),
                               ("capacity", "tail_at_capacity")):  # fmt: skip
                tail = row.get(key)
                if not tail:
                    continue
                rows = [
                    [band, f"{values['requests']:.0f}", *(f"{values[c]:.2f}" for c in columns)]
                    for band, values in tail.items()
                ]
                tables += [
                    f"**{name}, {system}, at its {where}** (mean ms per request in each band of "
                    "client latency):",
                    "",
                    *_table(["band", "requests", *columns], rows),
                    "",
                ]
                sentence = tail_reading(f"{name} at its {where}", system, tail)
                if sentence:
                    readings.append(sentence)
    if not tables:
        return []
    return [
        "",
        "## Where the tail comes from",
        "",
        "Every answered request of a rate, grouped by its client latency; each part is the "
        "band's mean. `lag`: the load generator sent late; `outside`: client − lag − server "
        "time (connection, HTTP, admission queue, body, validation, writing the answer); "
        "`fetch`, `wait` (for a scoring batch), `model` (the batch's scoring in the scoring "
        "thread, shared by the `batch` requests in it), `handoff` (the batch's trips to that "
        "thread and back to the event loop) and `other` from the service's `Server-Timing` "
        "header; `model_cpu`: the scoring thread's CPU time during `model` (well below "
        "`model`: the thread waited for a core); `gc` and `loop_lag`: garbage-collection pauses "
        "and event-loop lag while the request was in the route (these three overlap the other "
        "parts).",
        "",
        *readings,
        "",
        *tables,
    ]


def _reading(workloads: dict[str, dict[str, Any]]) -> list[str]:
    """Sentences computed from the figures: where the service's CPU per request goes."""
    lines = []
    for name, entry in workloads.items():
        service = entry.get(SERVICE) or {}
        stages, cpu = service.get("stages_ms_at_sustainable"), service.get("cpu_ms_per_request")
        if not stages or cpu is None or "request" not in stages:
            continue
        model = sum(stages.get(stage, 0.0) for stage in MODEL_STAGES)
        lines.append(
            f"- {name}: the service spends {cpu:.2f} ms of CPU per request at its sustainable "
            f"rate; the model stages take {model:.2f} ms of the {stages['request']:.2f} ms a "
            f"request spends in the server ({100 * model / stages['request']:.0f}%), the rest "
            "is fetching, batching, validation and serialisation."
        )
    return lines


def markdown(summary: Summary) -> str:
    workloads: dict[str, dict[str, Any]] = summary["workloads"]
    systems: list[dict[str, Any]] = summary.get("systems") or []
    lines = [
        "# Serving benchmark",
        "",
        f"Regenerate with `{summary['command']}` (about {round(float(summary['wall_s']) / 60)} "
        "minutes). Machine: "
        f"{summary['machine']}. Measured {summary['created_at']}; 1-minute load average "
        f"before and after the run: {summary['load_average_before_after']}.",
        "",
        "Every system serves the same users from the same snapshot, on this machine, with the "
        "open-loop load generator on the same cores (Poisson arrivals, "
        f"{summary['seconds_per_rate']} s per offered rate, latency from the scheduled send "
        f"time){_priority(summary)}. Each system climbs its ladder of rates "
        f"{summary.get('rounds', 1)} times, the "
        "systems interleaved (service, then each other system, then the service again …), and "
        f"the tables give the median over those rounds and their range{_robbed(summary)}. "
        "A rate is sustained "
        f"when p99 ≤ {summary['p99_objective_ms']:.0f} ms and ≤ 1% of the requests sent fail. "
        "CPU ms per request: user + system CPU time of every process of the system (from "
        "`/proc`) over the requests it answered at that rate.",
        "",
        *(
            f"- **{s['name']}**: {s['description']}."
            + (
                ""
                if s.get("parity_max_abs_difference") is None
                else f" Scores against the service's on the same requests before timing: max "
                f"abs difference {s['parity_max_abs_difference']:.1e}"
                + ("." if s.get("timed", True) else " — **too far: not timed**.")
            )
            + ("" if s.get("started", True) else " It did not start: **not timed**.")
            + (
                f" Settings: {', '.join(f'{k}={v}' for k, v in s['settings'].items())}."
                if s.get("settings")
                else ""
            )
            for s in systems
        ),
        "",
        f"Matrix-multiply peak measured in the same run (float32 GEMM, every core): "
        f"**{summary['matmul_peak_gflops']} GFLOP/s**.",
        "",
        *_systems_table(workloads),
        "",
        *_ratios_table(workloads),
        "",
        "*Sustainable*: the highest rate served with p99 within the objective (a round that "
        "sustains none counts as 0 in the median; — when the median is 0); *capacity*: the "
        "highest throughput achieved at any latency with ≤ 1% failing (a rate saturates when "
        "more fail or the median passes 1 s; the ladder stops after two saturated rates in a "
        f"row){_knee(summary)}. Ratios are of the medians. The FLOP/s fraction is the model's "
        "arithmetic at the service's median sustainable rate over the measured peak.",
        "",
        *targets_markdown(summary),
        *(["", "What the figures say:", "", *_reading(workloads)] if _reading(workloads) else []),
        *stolen_lines(
            [
                (name, system, entry[system]["rounds"])
                for name, entry in workloads.items()
                for system in _systems(entry)
            ]
        ),
        *_session_lines(summary.get("sessions") or {}),
        *_tail_lines(workloads),
    ]
    lines += overload_section(summary)
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
        lines += _ladder_lines(name, entry)
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
