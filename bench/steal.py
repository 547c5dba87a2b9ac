"""CPU time the hypervisor stole from this virtual machine: measured around every offered rate
of a bench run, and set beside what each round sustained in the report."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psutil

#: A ladder or overload run during which more than this share of the machine's CPU was stolen
#: is robbed: it is measured again after the others (see :mod:`bench.rounds`).
ROBBED_SHARE = 0.10
#: The most extra passes over the systems (or admission configs) short of clean measurements.
EXTRA_PASSES = 2

#: Rounds whose stolen shares differ by at least this much are named side by side.
SPREAD_WORTH_NAMING = 0.02


@dataclass(frozen=True)
class MachineCpu:
    """The machine's CPU time so far, every core together, and how much of it the hypervisor
    gave to other guests (``steal`` in ``/proc/stat``; 0 where the kernel does not count it).
    On a shared virtual machine stolen time slows every system at random; a measurement taken
    while much was stolen says more about the neighbours than about the system."""

    steal_s: float
    total_s: float

    @classmethod
    def now(cls) -> MachineCpu:
        times = psutil.cpu_times()
        fields = times._asdict()
        # guest time is already counted in user and nice.
        total = sum(fields.values()) - fields.get("guest", 0.0) - fields.get("guest_nice", 0.0)
        return cls(fields.get("steal", 0.0), total)

    def stolen_share_since(self, earlier: MachineCpu) -> float | None:
        """The share of the CPU time since ``earlier`` that was stolen; None if none passed."""
        spent = self.total_s - earlier.total_s
        return None if spent <= 0 else max(0.0, self.steal_s - earlier.steal_s) / spent


def mean_share(shares: Iterable[float | None]) -> float | None:
    """The mean of the measured shares (each over as long a time); None if none was measured."""
    measured = [share for share in shares if share is not None]
    return statistics.fmean(measured) if measured else None


def robbed(share: float | None) -> bool:
    """Whether more than :data:`ROBBED_SHARE` was stolen (unmeasured: nothing says so)."""
    return share is not None and share > ROBBED_SHARE


def least_robbed(shares: Sequence[float | None], count: int) -> list[int]:
    """Indices of the ``count`` least robbed measurements (unmeasured counts as none stolen),
    the earlier first on a tie."""
    return sorted(range(len(shares)), key=lambda n: (shares[n] or 0.0, n))[:count]


def percent(share: float | None) -> str:
    return "—" if share is None else f"{100 * share:.0f}%"


#: One system's ladders under one workload: (workload, system, each round's entry).
Rounds = tuple[str, str, list[dict[str, Any]]]


def stolen_lines(ladders: list[Rounds]) -> list[str]:
    """Each round's sustainable rate beside the CPU the hypervisor stole during its ladder, and
    for each system with rounds of different steal, the rate of its least and most robbed."""
    rows, findings = [], []
    for workload, system, rounds in ladders:
        for r in rounds:
            counted = "yes" if r.get("counted", True) else "no"
            rows.append(
                f"| {workload} | {system} | {r['round']} | {r['sustainable_rps'] or 'none'} | "
                f"{percent(r.get('cpu_stolen_share'))} | {counted} |"
            )
        measured = [r for r in rounds if r.get("cpu_stolen_share") is not None]
        if len(measured) < 2:
            continue
        least = min(measured, key=lambda r: float(r["cpu_stolen_share"]))
        most = max(measured, key=lambda r: float(r["cpu_stolen_share"]))
        if most["cpu_stolen_share"] - least["cpu_stolen_share"] >= SPREAD_WORTH_NAMING:
            findings.append(
                f"- {workload}, {system}: {_rate(least['sustainable_rps'])} sustained in the "
                f"round with the least stolen ({percent(least['cpu_stolen_share'])}), "
                f"{_rate(most['sustainable_rps'])} in the one with the most "
                f"({percent(most['cpu_stolen_share'])})."
            )
    if not any(r.get("cpu_stolen_share") is not None for _, _, rounds in ladders for r in rounds):
        return []
    return [
        "",
        "## CPU stolen by the hypervisor",
        "",
        "This machine is a virtual machine on a shared host: the hypervisor gives part of its "
        "CPU time to other guests (`steal` in `/proc/stat`), and how much changes from minute "
        "to minute. The share stolen over each round's ladder, beside what that round "
        "sustained:",
        "",
        "| workload | system | round | sustainable req/s | CPU stolen | in the medians |",
        "|---|---|---|---|---|---|",
        *rows,
        *(["", *findings] if findings else []),
    ]


def _rate(value: float | None) -> str:
    return "none" if value is None else f"{value} req/s"
