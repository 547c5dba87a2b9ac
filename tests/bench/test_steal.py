"""The CPU the hypervisor stole: read from the kernel, as a share of the time that passed."""

from __future__ import annotations

from bench.steal import MachineCpu, stolen_lines


def test_the_stolen_share_is_the_steal_over_the_time_that_passed() -> None:
    before, after = MachineCpu(steal_s=10.0, total_s=100.0), MachineCpu(steal_s=13.0, total_s=112.0)
    assert after.stolen_share_since(before) == 0.25
    assert before.stolen_share_since(before) is None  # no time passed


def test_the_machine_clock_reads_the_kernel() -> None:
    first = MachineCpu.now()
    sum(n * n for n in range(200_000))  # let some CPU time pass
    second = MachineCpu.now()
    assert 0.0 <= first.steal_s <= first.total_s
    assert second.total_s >= first.total_s and second.steal_s >= first.steal_s
    share = second.stolen_share_since(first)
    assert share is None or 0.0 <= share <= 1.0


def test_rounds_are_set_beside_what_was_stolen_during_them() -> None:
    rounds = [
        {"round": 0, "sustainable_rps": 150.0, "cpu_stolen_share": 0.01},
        {"round": 1, "sustainable_rps": None, "cpu_stolen_share": 0.3},
        {"round": 2, "sustainable_rps": 120.0, "cpu_stolen_share": 0.1},
    ]
    lines = stolen_lines([("W1", "service", rounds)])
    assert "| W1 | service | 1 | none | 30% | yes |" in lines
    assert (
        "- W1, service: 150.0 req/s sustained in the round with the least stolen (1%), none "
        "in the one with the most (30%)." in lines
    )
    # Rounds that lost about the same are not named; a run that did not measure it says nothing.
    even = [dict(r, cpu_stolen_share=0.05) for r in rounds]
    assert not any(line.startswith("- ") for line in stolen_lines([("W1", "service", even)]))
    unmeasured = [dict(r, cpu_stolen_share=None) for r in rounds]
    assert stolen_lines([("W1", "service", unmeasured)]) == []
