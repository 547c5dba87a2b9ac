"""Which ladders count: a ladder climbed while the hypervisor stole much of the machine's CPU
measures the neighbours more than the system, so such a ladder is climbed again at the end of
the run, and the medians take each system's least robbed ladders.

The rule is the same for every system and looks only at the stolen share, measured outside the
systems (``steal`` in ``/proc/stat``), never at what a ladder sustained.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.run import SystemRun
from bench.steal import EXTRA_PASSES, ROBBED_SHARE

__all__ = ["EXTRA_PASSES", "ROBBED_SHARE", "counted", "ladder_stolen", "round_stolen",
           "short_of_clean"]  # fmt: skip


def ladder_stolen(run: SystemRun) -> float | None:
    """The share stolen over one ladder (the mean of its rates' shares: each lasts as long)."""
    shares = [share for share in run.stolen if share is not None]
    return statistics.fmean(shares) if shares else None


def round_stolen(runs: list[SystemRun], system: str, round_index: int) -> float | None:
    """The share stolen over one system's round (every rate of every workload in it)."""
    shares = [
        share
        for run in runs
        if run.system == system and run.round == round_index
        for share in run.stolen
        if share is not None
    ]
    return statistics.fmean(shares) if shares else None


def short_of_clean(runs: list[SystemRun], systems: list[str], rounds: int) -> list[str]:
    """The systems with fewer than ``rounds`` rounds robbed of at most :data:`ROBBED_SHARE`
    (a round whose steal was not measured counts as clean: nothing says it was robbed)."""
    short = []
    for system in systems:
        climbed = sorted({run.round for run in runs if run.system == system})
        clean = [
            n
            for n in climbed
            if (stolen := round_stolen(runs, system, n)) is None or stolen <= ROBBED_SHARE
        ]
        if len(clean) < rounds:
            short.append(system)
    return short


def counted(entries: list[dict[str, Any]], rounds: int) -> set[int]:
    """The rounds the medians take: the ``rounds`` least robbed of ``entries`` (each with its
    ``round`` and ``cpu_stolen_share``), the earlier round first on a tie."""
    order = sorted(
        entries,
        key=lambda entry: (
            entry.get("cpu_stolen_share") if entry.get("cpu_stolen_share") is not None else 0.0,
            entry["round"],
        ),
    )
    return {entry["round"] for entry in order[:rounds]}
