"""Load shapes: how many simulated users run at each moment of a test.

Pure functions of the elapsed time, so they are tested without Locust; the locustfile's shape
class only asks the chosen one what to do at each tick.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

Plan = tuple[int, float] | None
"""(users, spawn rate per second) to run now, or None to stop the test."""

STEPS = 4
SPIKE_BASE_SHARE = 0.25
SPIKE_START, SPIKE_END = 0.4, 0.6


class LoadShape(StrEnum):
    soak = "soak"
    """All users for the whole run: steady state, for percentiles and leaks."""
    step = "step"
    """Users in four equal steps: where does latency start to bend?"""
    spike = "spike"
    """A quarter of the users, all of them for the middle fifth of the run, then a quarter:
    does the service recover after a burst?"""


def soak(elapsed_s: float, duration_s: float, users: int, spawn_rate: float) -> Plan:
    if elapsed_s >= duration_s:
        return None
    return users, spawn_rate


def step(elapsed_s: float, duration_s: float, users: int, spawn_rate: float) -> Plan:
    if elapsed_s >= duration_s:
        return None
    index = min(int(elapsed_s / duration_s * STEPS), STEPS - 1)
    return max(1, round(users * (index + 1) / STEPS)), spawn_rate


def spike(elapsed_s: float, duration_s: float, users: int, spawn_rate: float) -> Plan:
    if elapsed_s >= duration_s:
        return None
    share = elapsed_s / duration_s
    if SPIKE_START <= share < SPIKE_END:
        # A spike arrives at once, whatever the ramp of the rest of the test.
        return users, max(spawn_rate, float(users))
    return max(1, round(users * SPIKE_BASE_SHARE)), spawn_rate


SHAPES: dict[LoadShape, Callable[[float, float, int, float], Plan]] = {
    LoadShape.soak: soak,
    LoadShape.step: step,
    LoadShape.spike: spike,
}


def plan(
    shape: LoadShape | str, elapsed_s: float, duration_s: float, users: int, spawn_rate: float
) -> Plan:
    return SHAPES[LoadShape(shape)](elapsed_s, duration_s, users, spawn_rate)
