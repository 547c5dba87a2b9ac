"""The capacity plan :mod:`bench.offline_scale` derives from its measured rates, and the
"Offline pipelines on Ray" section of docs/SCALE.md that reports both."""

from __future__ import annotations

import math
from typing import Any

SECTION = "## Offline pipelines on Ray"


def capacity_plan(report: dict[str, Any]) -> dict[str, Any]:
    """Node-hours of a full pass of each stage at the target size, and the workers a nearline
    cycle needs, from the Ray path's rows per second per core."""
    plan = report["plan"]
    node_cores = plan["cores_per_node"]
    targets = {
        "knowledge": plan["target_items"],
        "encode": plan["target_items"],
        "generate": plan["target_users"],
        "publish": plan["target_users"] + plan["target_items"],
    }
    passes = {}
    for stage, rows in targets.items():
        run = report["ray"].get(stage)
        if run is None:
            continue
        per_core = run["rows"] / run["seconds"] / run["cores"]
        passes[stage] = {
            "rows": rows,
            "rows_per_s_per_core": per_core,
            "node_hours": rows / (per_core * node_cores) / 3600,
        }
    cycle = None
    if "generate" in passes:
        per_cycle = plan["active_users_per_s"] * plan["cycle_s"]
        per_core = passes["generate"]["rows_per_s_per_core"]
        workers = math.ceil(per_cycle / (per_core * plan["cycle_s"]))
        cycle = {"users": per_cycle, "workers": workers, "nodes": math.ceil(workers / node_cores)}
    return {"passes": passes, "nearline_cycle": cycle}


#: The one-process run a Ray stage is compared with, where it is not the stage of the same name:
#: the Ray workers describe with the offline backend's fast path (and write JSON lines).
SINGLE_COUNTERPART = {"knowledge": "knowledge (fast path)"}


def ray_efficiency(report: dict[str, Any]) -> dict[str, float]:
    """Per stage, the Ray path's rows/s per core over the one-process path's: 1 when spreading
    the stage over Ray's workers costs nothing per core, below 1 by what it costs."""
    found = {}
    for stage, run in report["ray"].items():
        single = report["single"].get(SINGLE_COUNTERPART.get(stage, stage))
        single = single or report["single"].get(stage)
        if single is not None:
            ray_rate = run["rows"] / run["seconds"] / run["cores"]
            single_rate = single["rows"] / single["seconds"] / single["cores"]
            found[stage] = ray_rate / single_rate
    return found


def markdown(report: dict[str, Any]) -> str:
    plan, sizes = report["plan"], report["dataset"]
    lines = [
        SECTION,
        "",
        f"Regenerate with `{report['command']}`; {report['machine']}; Ray {report['ray_version']}"
        f", a local Ray of {report['num_cpus']} CPUs; {report['generated_at']}. Dataset: "
        f"{sizes['items']:,} items, {sizes['users']:,} users, {sizes['behaviours']:,} behaviours; "
        f"`generate` runs for a sample of {sizes['generated_users']:,} users (K=16, 4 steps, "
        f"greedy; {report['gbr_tokens']} tokens). `publish` rows are items plus users.",
        "",
        "| stage | path | rows | seconds | rows/s | cores | rows/s per core | peak RSS (MiB) "
        "| all processes' peak RSS (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for path, runs in (("1 process", report["single"]), ("Ray", report["ray"])):
        for stage, run in runs.items():
            rate = run["rows"] / run["seconds"]
            tree = run.get("all_processes_peak_mib")
            cells = [
                stage, path, f"{run['rows']:,}", f"{run['seconds']:.2f}", f"{rate:,.0f}",
                str(run["cores"]), f"{rate / run['cores']:,.0f}", f"{run['peak_mib']:,.0f}",
                "–" if tree is None else f"{tree:,.0f}",
            ]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    efficiency = ray_efficiency(report)
    if efficiency:
        lines += [
            "",
            "Ray's rows/s per core over one process's: "
            + ", ".join(f"{stage} {ratio:.2f}" for stage, ratio in efficiency.items())
            + " (Ray's `knowledge` against the one-process fast path, the backend it runs; "
            "below 1: what scheduling, moving shards between processes, the workers' start "
            "and, for knowledge, writing JSON lines cost per core at this size).",
        ]
    lines += _plan_lines(report, plan)
    return "\n".join(lines) + "\n"


def _plan_lines(report: dict[str, Any], plan: dict[str, Any]) -> list[str]:
    capacity = report["capacity"]
    lines = [
        "",
        f"### Capacity plan: {plan['target_users']:,} users, {plan['target_items']:,} items",
        "",
        f"From the Ray rows/s per core above, at {plan['cores_per_node']} cores a node. "
        "Assumptions: rows/s per core holds as cores are added (the measured Ray path already "
        "pays its scheduling and serialisation; the figure is for this machine's cores); a "
        "`knowledge` pass is the offline backend's (an LLM endpoint's own rate limit bounds it "
        "instead); `publish` wrote to one local redis-server on the same cores, so a Redis "
        "deployment must take the same write rate per core; `generate` is the CPU path at "
        "the sample's history lengths (a GPU worker, `--gpus-per-worker`, is not measured "
        "here).",
        "",
        "| stage | rows | rows/s per core | node-hours for a full pass |",
        "|---|---:|---:|---:|",
    ]
    for stage, row in capacity["passes"].items():
        lines.append(
            f"| {stage} | {row['rows']:,} | {row['rows_per_s_per_core']:,.0f} "
            f"| {row['node_hours']:,.2f} |"
        )
    cycle = capacity["nearline_cycle"]
    if cycle is not None:
        lines += [
            "",
            f"Nearline, a {plan['cycle_s']} s incremental cycle at {plan['active_users_per_s']:,}"
            f" users with new events a second (`--active-users-per-s`): {cycle['users']:,} users "
            f"a cycle, {cycle['workers']:,} generation workers (cores), {cycle['nodes']:,} "
            "nodes.",
        ]
    return lines
