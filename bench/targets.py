"""The serving targets, checked against one bench run's figures."""

from __future__ import annotations

from typing import Any

from bench.systems import SERVICE, SERVICE_SELF_ATTENTION

Target = tuple[str, str, float | None, float, bool, str]


def _check(value: float | None, goal: float, higher: bool = True) -> str:
    if value is None:
        return "not measured"
    met = value >= goal if higher else value <= goal
    return "met" if met else "**missed**"


def targets(summary: dict[str, Any]) -> list[Target]:
    """(name, goal as written, this run's value, goal, higher is better, unit) of each target."""
    workloads: dict[str, dict[str, Any]] = summary["workloads"]
    w1, w2 = workloads.get("W1", {}), workloads.get("W2", {})
    sessions: dict[str, dict[str, Any]] = summary.get("sessions") or {}
    session = sessions.get(SERVICE_SELF_ATTENTION) or sessions.get(SERVICE) or {}
    encoder = "self-attention" if SERVICE_SELF_ATTENTION in sessions else "light"
    defaults: dict[str, Any] = summary.get("overload_defaults") or {}
    fraction = w1.get("service_flops_fraction_of_peak")
    w2_service = (w2.get(SERVICE) or {}).get("sustainable_rps")
    return [
        ("W1: service / Ray Serve peer, sustainable rate (medians)", "≥ 2×",
         w1.get("ratio_ray_serve"), 2.0, True, "×"),
        ("W1: service / naive baseline, sustainable rate (medians)", "≥ 6×",
         w1.get("ratio_baseline"), 6.0, True, "×"),
        ("W1: Ray Serve CPU per request / service CPU per request", "≥ 2×",
         w1.get("cpu_ratio_ray_serve"), 2.0, True, "×"),
        ("W1: model FLOP/s at the sustainable rate / matmul peak", "≥ 25%",
         None if fraction is None else 100 * fraction, 25.0, True, "%"),
        ("W2: service sustainable rate", "≥ 35 req/s", w2_service, 35.0, True, " req/s"),
        ("W2: service / Ray Serve peer, capacity (medians)", "≥ 2×",
         w2.get("capacity_ratio_ray_serve"), 2.0, True, "×"),
        (f"Session ({encoder} user encoder): later pages / first request (client)", "≥ 1.5×",
         session.get("client_speedup"), 1.5, True, "×"),
        ("3× the most answered, default limits: p99 of accepted requests", "≤ 50 ms",
         defaults.get("accepted_p99_ms"), 50.0, False, " ms"),
    ]  # fmt: skip


def targets_markdown(summary: dict[str, Any]) -> list[str]:
    lines = [
        "## Against the targets",
        "",
        "| target | goal | this run | |",
        "|---|---|---|---|",
    ]
    for name, goal_text, value, goal, higher, unit in targets(summary):
        shown = "—" if value is None else f"{value:.3g}{unit}"
        lines.append(f"| {name} | {goal_text} | {shown} | {_check(value, goal, higher)} |")
    return lines
