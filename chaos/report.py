"""Figures of a chaos run: per phase counts, latency and recovery; events; the machine."""

from __future__ import annotations

import math
import os
import platform
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from chaos.scenario import Phase
from chaos.traffic import Answer, Outcome

RECOVERY_WINDOW_S = 1.0


def machine() -> dict[str, Any]:
    """CPU model and count from /proc/cpuinfo, memory, Python, and the load when measured."""
    models = [
        line.split(":", 1)[1].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("model name")
    ]
    return {
        "cpu": models[0] if models else platform.processor(),
        "cpus": len(models) or os.cpu_count(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _percentile(latencies: list[float], q: float) -> float | None:
    if not latencies:
        return None
    return round(float(np.percentile(latencies, q, method="higher")), 1)


def recovery_s(answers: list[Answer], cleared_s: float, end_s: float) -> float | None:
    """Seconds from ``cleared_s`` until the first answer that opens a window of
    ``RECOVERY_WINDOW_S`` in which every answer is normal; None if the phase ends first."""
    window = [a for a in answers if cleared_s <= a.sent_s < end_s]
    window.sort(key=lambda a: a.sent_s)
    bad = [a.sent_s for a in window if a.outcome is not Outcome.NORMAL]
    for answer in window:
        if answer.sent_s + RECOVERY_WINDOW_S > end_s:
            return None
        opens = answer.sent_s
        if not any(opens <= t < opens + RECOVERY_WINDOW_S for t in bad):
            return round(max(0.0, opens - cleared_s), 2)
    return None


def phase_figures(phase: Phase, answers: list[Answer]) -> dict[str, Any]:
    mine = [a for a in answers if phase.start_s <= a.sent_s < phase.end_s]
    outcomes = Counter(a.outcome for a in mine)
    answered = [a.latency_ms for a in mine if a.outcome is not Outcome.FAILED]
    versions = Counter(a.bundle_version for a in mine if a.bundle_version)
    reasons = Counter(reason for a in mine for reason in a.degraded)
    return {
        "phase": phase.name,
        "seconds": round(phase.end_s - phase.start_s, 1),
        "sent": len(mine),
        **{outcome.value: outcomes.get(outcome, 0) for outcome in Outcome},
        "p50_ms": _percentile(answered, 50),
        "p99_ms": _percentile(answered, 99),
        "recovery_s": recovery_s(answers, phase.cleared_s, phase.end_s),
        "degraded_by_reason": dict(reasons),
        "versions": dict(versions),
        **phase.notes,
    }


def version_flip(answers: list[Answer], old: str, new: str) -> dict[str, Any]:
    """When the first answer came from ``new`` and the last from ``old`` (by send time)."""
    first_new = min((a.sent_s for a in answers if a.bundle_version == new), default=math.nan)
    last_old = max((a.sent_s for a in answers if a.bundle_version == old), default=math.nan)
    return {
        "first_new_s": round(first_new, 2),
        "last_old_s": round(last_old, 2),
        "old_after_first_new": sum(
            1 for a in answers if a.bundle_version == old and a.sent_s > first_new
        ),
    }


def to_markdown(result: dict[str, Any], command: str) -> str:
    m = result["machine"]
    totals = result["totals"]
    events = result["events"]
    lines = [
        "# Reliability: the chaos run",
        "",
        f"Regenerate with `{command}` (a few minutes). It starts a Redis server (append-only "
        "file, `appendfsync everysec`) and the service on the Redis store with two uvicorn "
        "workers behind one port (`REASEQ_WORKERS=2`, no proxy: the kernel spreads connections "
        "over the workers), over the demo bundle published to Redis with every user's "
        "generated behaviours (written by the nearline job, `reaseq gbr generate`), then offers "
        "steady "
        f"open-loop load ({result['load']['rate_rps']:.0f} rank requests/s, "
        f"{result['load']['candidates']} candidates each) and {result['load']['events_rps']:.0f} "
        "admin event writes/s with event IDs, while it injects the faults below one after "
        "another. What happens in each phase is described in "
        "[OPERATIONS.md](OPERATIONS.md#chaos-run).",
        "",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs ({m['arch']}), Python {m['python']}; load "
        f"average {m['load_average'][0]} at the start and {result['load_average_end'][0]} at "
        f"the end (the load generator runs on the same cores). Run {result['started_at']}.",
        "",
        "## Rank requests",
        "",
        f"{totals['sent']} sent: {totals['normal']} answered normally, {totals['degraded']} "
        f"degraded (200 with a `degraded` reason), {totals['shed']} shed (429), "
        f"{totals['failed']} failed (5xx, connection error or no answer within 5 s).",
        "",
        "| phase | s | sent | normal | degraded | shed | failed | p50 ms | p99 ms | recovery s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in result["phases"]:
        lines.append(
            f"| {p['phase']} | {p['seconds']} | {p['sent']} | {p['normal']} | {p['degraded']} "
            f"| {p['shed']} | {p['failed']} | {_cell(p['p50_ms'])} | {_cell(p['p99_ms'])} "
            f"| {_cell(p['recovery_s'])} |"
        )
    reasons = [
        f"{p['phase']}: " + ", ".join(f"`{k}` {v}" for k, v in p["degraded_by_reason"].items())
        for p in result["phases"]
        if p["degraded_by_reason"]
    ]
    if reasons:
        lines += ["", "Degraded answers by reason: " + "; ".join(reasons) + "."]
    lines += [
        "",
        "Latency is from the scheduled send time to the answer, over the requests sent during "
        "the phase that got an answer. *Recovery* is the time from the fault's end (Redis "
        "restarted; the worker killed, as the supervisor replaces it by itself; the activation "
        f"answered) to the first {RECOVERY_WINDOW_S:.0f} s in which every answer was normal; "
        "0 when no answer was ever abnormal.",
        "",
        "## Faults",
        "",
    ]
    lines += [f"- {line}" for line in result["fault_notes"]]
    lines += [
        "",
        "## Events",
        "",
        f"{events['acknowledged']} events acknowledged (of {events['attempts']} write attempts; "
        f"{events['refused']} attempts refused or unanswered and sent again with the same event "
        f"ID, {events['unacknowledged']} never acknowledged); afterwards **{events['found']} of "
        f"the {events['acknowledged']} acknowledged events were found** in Redis (the event ID "
        "among the user's recorded IDs and the behaviour in the user's sequence): "
        f"{events['acknowledged'] - events['found']} lost.",
        "",
        "Figures: [reliability.json](reliability.json).",
        "",
    ]
    return "\n".join(lines)


def _cell(value: object) -> str:
    return "–" if value is None else str(value)
