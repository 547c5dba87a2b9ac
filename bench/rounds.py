"""Which ladders count: a ladder climbed while the hypervisor stole much of the machine's CPU
measures the neighbours more than the system, so such a ladder is climbed again at the end of
the run, and the medians take each system's least robbed ladders.

The rule is the same for every system and looks only at the stolen share, measured outside the
systems (``steal`` in ``/proc/stat``), never at what a ladder sustained.
"""

from __future__ import annotations

from typing import Any

from bench.run import SystemRun
from bench.steal import least_robbed, mean_share, robbed


def ladder_stolen(run: SystemRun) -> float | None:
    """The share stolen over one ladder (its rates' shares: each lasts as long)."""
    return mean_share(run.stolen)


def round_stolen(runs: list[SystemRun], system: str, round_index: int) -> float | None:
    """The share stolen over one system's round (every rate of every workload in it)."""
    return mean_share(
        share
        for run in runs
        if run.system == system and run.round == round_index
        for share in run.stolen
    )


def short_of_clean(runs: list[SystemRun], systems: list[str], rounds: int) -> list[str]:
    """The systems with fewer than ``rounds`` rounds not robbed (a round whose steal was not
    measured counts as clean: nothing says it was robbed)."""
    short = []
    for system in systems:
        climbed = {run.round for run in runs if run.system == system}
        clean = [n for n in climbed if not robbed(round_stolen(runs, system, n))]
        if len(clean) < rounds:
            short.append(system)
    return short


def counted(entries: list[dict[str, Any]], rounds: int) -> set[int]:
    """The rounds the medians take: the ``rounds`` least robbed of ``entries`` (each with its
    ``round`` and ``cpu_stolen_share``), the earlier round first on a tie."""
    ordered = sorted(entries, key=lambda entry: entry["round"])
    shares = [entry.get("cpu_stolen_share") for entry in ordered]
    return {ordered[n]["round"] for n in least_robbed(shares, rounds)}
