"""Where the tail comes from: the answered requests of one rate grouped by their client latency
(a middle band around the median, the p90–p99 band and the slowest 1%), and each band's mean of
every part of a request's time, from the load generator's clock and the service's
``Server-Timing`` header.

Parts that add up to the client's latency: ``lag`` (the generator sent late), ``outside``
(client − lag − server: connection, HTTP parsing, admission queue, body read, validation and
writing the answer), ``fetch``, ``wait`` (for a scoring batch), ``model`` (the batch's scoring in
the scoring thread), ``handoff`` (the batch's trips to that thread and back to the event loop)
and ``other`` (the rest of the route: behaviours, ordering, serialisation). ``model_cpu``, ``gc``
and ``loop_lag`` overlap those: the scoring thread's CPU time during ``model`` (well below it: the
thread waited for a core), the garbage collection pauses and the event-loop lag the process had
while the request was in the route.
"""

from __future__ import annotations

from typing import Any

import numpy as np

BANDS = (("p40–p60", 40.0, 60.0), ("p90–p99", 90.0, 99.0), ("≥ p99", 99.0, 100.0))
PARTS = ("lag", "outside", "fetch", "wait", "model", "handoff", "other")
OVERLAPS = ("model_cpu", "gc", "loop_lag")


def _parts(record: dict[str, float]) -> dict[str, float]:
    """A request's parts; ``send_lag`` is the generator's, the header's ``lag`` the loop's."""
    server = record["server"]
    inside = sum(record.get(part, 0.0) for part in ("fetch", "wait", "model", "handoff"))
    return {
        "client": record["client"],
        "lag": record["send_lag"],
        "outside": max(0.0, record["client"] - record["send_lag"] - server),
        "fetch": record.get("fetch", 0.0),
        "wait": record.get("wait", 0.0),
        "model": record.get("model", 0.0),
        "handoff": record.get("handoff", 0.0),
        "other": max(0.0, server - inside),
        "model_cpu": record.get("model_cpu", 0.0),
        "gc": record.get("gc", 0.0),
        "loop_lag": record.get("lag", 0.0),
        "batch": record.get("batch", 0.0),
    }


def tail_breakdown(records: list[dict[str, float]]) -> dict[str, dict[str, float]] | None:
    """Per band: how many requests and the mean ms of each part; None without Server-Timing."""
    parts = [_parts(r) for r in records if "server" in r]
    if not parts:
        return None
    clients = np.array([p["client"] for p in parts])
    found: dict[str, dict[str, float]] = {}
    for name, low, high in BANDS:
        lo, hi = np.percentile(clients, [low, high], method="higher")
        members = [p for p, c in zip(parts, clients, strict=True) if lo <= c <= hi]
        if not members:
            continue
        found[name] = {"requests": float(len(members))} | {
            key: round(float(np.mean([m[key] for m in members])), 3)
            for key in ("client", *PARTS, *OVERLAPS, "batch")
        }
    return found


def tail_reading(workload: str, system: str, tail: dict[str, Any]) -> str | None:
    """One sentence: how much slower the slowest 1% are than the median band, and which part
    grows most between them."""
    middle, slowest = tail.get("p40–p60"), tail.get("≥ p99")
    if not middle or not slowest:
        return None
    growth = {part: slowest[part] - middle[part] for part in PARTS}
    top = max(growth, key=lambda part: growth[part])
    ratio = slowest["client"] / middle["client"] if middle["client"] else float("inf")
    return (
        f"- {workload}, {system}: the slowest 1% take {slowest['client']:.1f} ms against "
        f"{middle['client']:.1f} ms around the median ({ratio:.1f}×); the part that grows most is "
        f"**{top}** (+{growth[top]:.1f} ms; {middle[top]:.1f} → {slowest[top]:.1f} ms), then "
        + ", ".join(
            f"{part} +{growth[part]:.1f}"
            for part in sorted(growth, key=lambda p: -growth[p])[1:3]
            if growth[part] > 0
        )
        + f"; the scoring thread's CPU time in model {middle['model_cpu']:.1f} → "
        f"{slowest['model_cpu']:.1f} ms; GC pauses {middle['gc']:.1f} → {slowest['gc']:.1f} ms "
        f"and event-loop lag {middle['loop_lag']:.1f} → {slowest['loop_lag']:.1f} ms during the "
        "request."
    )
