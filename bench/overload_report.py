"""The overload section of the bench report: three times the service's capacity offered with its
default admission limits, with the queue first come, first served throughout, and with tight
limits."""

from __future__ import annotations

from typing import Any

from bench.steal import ROBBED_SHARE, percent


def overload_section(summary: dict[str, Any]) -> list[str]:
    tight, defaults = summary.get("overload") or {}, summary.get("overload_defaults") or {}
    first_come = summary.get("overload_first_come") or {}
    if not (tight or defaults):
        return []
    objective = float(summary["p99_objective_ms"])
    return [
        "",
        "## Overload and load shedding",
        *_overload_lines("Default limits", defaults, objective),
        *_overload_lines("First come, first served", first_come, objective),
        *_overload_lines("Tight limits", tight, objective),
    ]


def _v(value: object, suffix: str = "") -> str:
    return "—" if value is None else f"{value}{suffix}"


def _overload_lines(title: str, overloaded: dict[str, Any], objective: float) -> list[str]:
    if not overloaded:
        return []
    limits = overloaded["admission"]
    admission = ", ".join(f"`{k}={v}`" for k, v in limits.items()) if limits else "the defaults"
    each = overloaded.get("accepted_p99_ms_each") or []
    kept = overloaded.get("counted_each") or [True] * len(each)
    median = (
        "the median one:"
        if all(kept)
        else f"the median of the {sum(kept)} least robbed (the others robbed of more than "
        f"{percent(ROBBED_SHARE)} of the CPU and run again):"
    )
    repeated = (
        f" Of {len(each)} runs, interleaved with the other limits (accepted p99 "
        f"{', '.join(f'{_v(v)}' for v in each)} ms; CPU stolen "
        f"{', '.join(percent(v) for v in overloaded.get('cpu_stolen_share_each') or [])}), "
        f"{median}"
        if len(each) > 1
        else ""
    )
    return [
        "",
        f"**{title}**:{repeated} {overloaded['factor']}× the most the service answered in a "
        f"{overloaded['workload']} ladder ({_v(overloaded.get('capacity_rps'), ' req/s')}, "
        f"median over rounds; {overloaded['offered_rps']} req/s offered), admission "
        f"limits {admission}: {overloaded['accepted']} of {overloaded['sent']} requests "
        f"accepted ({overloaded['accepted_rps']} req/s), {overloaded['shed']} shed with 429 and "
        f"`Retry-After` (p99 of the 429 answers {_v(overloaded.get('shed_p99_ms'), ' ms')}), "
        f"{overloaded['failed_otherwise']} failed otherwise; the accepted ones answered with p50 "
        f"**{overloaded['accepted_p50_ms']} ms** and p99 **{overloaded['accepted_p99_ms']} ms** "
        f"(objective {objective:.0f} ms). The load generator, on the same cores, sent "
        f"with a lag of p99 {_v(overloaded.get('send_lag_p99_ms'), ' ms')}; counted from "
        f"the actual send, accepted p99 {_v(overloaded.get('accepted_after_send_p99_ms'), ' ms')}"
        f", and the service's own time p99 "
        f"{_v(overloaded.get('accepted_server_p99_ms'), ' ms')}. The hypervisor stole "
        f"{percent(overloaded.get('cpu_stolen_share'))} of the machine's CPU meanwhile.",
    ]
