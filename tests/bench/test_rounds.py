"""Which ladders count: rounds robbed by the hypervisor are climbed again, and the medians take
each system's least robbed rounds, by the stolen share alone."""

from __future__ import annotations

from bench.loadgen import RateResult
from bench.rounds import counted, round_stolen, short_of_clean
from bench.run import SystemRun
from bench.steal import ROBBED_SHARE
from bench.summary import system_entry


def _ladder(system: str, round_index: int, stolen: float, sustained_p99: list[float]) -> SystemRun:
    """Rates 20, 40, 80 … req/s, each with its slowest 5% at the given p99."""
    run = SystemRun(system, "W1", round=round_index)
    for n, slowest in enumerate(sustained_p99):
        rate = 20.0 * 2**n
        sent = int(rate * 10)
        slow = max(1, sent // 20)
        run.rates.append(
            RateResult(rate, sent, sent, 0, 10.0, [1.0] * (sent - slow) + [slowest] * slow)
        )
        run.cpu_ms.append(2.0)
        run.stolen.append(stolen)
        run.stages_ms.append({})
    return run


def test_a_system_short_of_clean_rounds_is_named_and_the_others_are_not() -> None:
    runs = [
        _ladder("service", 0, 0.01, [10, 20]),
        _ladder("service", 1, ROBBED_SHARE + 0.05, [10, 90]),
        _ladder("service", 2, 0.02, [10, 20]),
        _ladder("ray_serve", 0, 0.03, [10]),
        _ladder("ray_serve", 1, ROBBED_SHARE, [10]),  # at the limit: clean
        _ladder("ray_serve", 2, 0.0, [10]),
    ]
    assert round_stolen(runs, "service", 1) == ROBBED_SHARE + 0.05
    assert round_stolen(runs, "baseline", 0) is None
    assert short_of_clean(runs, ["service", "ray_serve"], 3) == ["service"]
    runs.append(_ladder("service", 3, 0.04, [10, 20, 30]))
    assert short_of_clean(runs, ["service", "ray_serve"], 3) == []
    # A round without a measured steal is not held against its system.
    unmeasured = [_ladder("baseline", n, 0.0, [10]) for n in range(3)]
    for run in unmeasured:
        run.stolen = [None]
    assert short_of_clean(unmeasured, ["baseline"], 3) == []


def test_the_medians_take_the_least_robbed_rounds_and_list_them_all() -> None:
    runs = [
        _ladder("service", 0, 0.01, [10, 20]),  # sustains 40
        _ladder("service", 1, 0.30, [60]),  # robbed: sustains none
        _ladder("service", 2, 0.05, [10, 20, 30]),  # sustains 80
        _ladder("service", 3, 0.02, [10, 20, 30, 40]),  # climbed again: sustains 160
    ]
    entry = system_entry(runs, 3)
    assert [r["round"] for r in entry["rounds"]] == [0, 1, 2, 3]
    assert [r["counted"] for r in entry["rounds"]] == [True, False, True, True]
    assert entry["sustainable_rps"] == 80.0  # of 40, 80, 160; the robbed round's none is out
    assert entry["sustainable_spread"] == [40.0, 160.0]
    # Every round counts when no count is given; a tie goes to the earlier round.
    assert system_entry(runs)["sustainable_rps"] == 60.0
    tied = [{"round": 4, "cpu_stolen_share": 0.0}, {"round": 2, "cpu_stolen_share": 0.0}]
    assert counted([*tied, {"round": 0, "cpu_stolen_share": None}], 2) == {0, 2}
