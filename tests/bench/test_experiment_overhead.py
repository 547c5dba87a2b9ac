"""The experiment-overhead report: medians per configuration and rate, the overhead figure."""

from __future__ import annotations

import json

import pytest

from bench.experiment_overhead import (
    EXPERIMENT,
    SINGLE,
    SINGLE_AGAIN,
    Measured,
    capacities,
    markdown,
    summarise,
)
from bench.experiment_toggle import rotated
from bench.experiment_toggle import summarise as summarise_toggled
from bench.experiment_work import added_work_us


def _m(name: str, round_: int, rate: float, cpu: float | None) -> Measured:
    return Measured(name, round_, rate, ok=100, failed=0, cpu_ms=cpu, p50_ms=5.0, p99_ms=9.0)


def test_overhead_is_the_median_ratio_of_round_medians() -> None:
    measured = [
        *(_m(SINGLE, r, 20.0, cpu) for r, cpu in enumerate([4.0, 5.0, 100.0])),
        *(_m(EXPERIMENT, r, 20.0, cpu) for r, cpu in enumerate([4.2, 5.2, 5.4])),
        *(_m(SINGLE, r, 40.0, cpu) for r, cpu in enumerate([2.0, 2.0, 2.0])),
        *(_m(EXPERIMENT, r, 40.0, cpu) for r, cpu in enumerate([2.2, None, 2.2])),
        *(
            _m(SINGLE_AGAIN, r, rate, 1.01 * cpu)
            for r, rate, cpu in [(0, 20.0, 5.0), (0, 40.0, 2.0)]
        ),
    ]
    summary = summarise(measured, [20.0, 40.0])
    first, second = summary["per_rate"]
    assert first[SINGLE]["cpu_ms"] == 5.0 and first[EXPERIMENT]["cpu_ms"] == 5.2
    assert first["cpu_ratio"] == pytest.approx(1.04)
    assert second["cpu_ratio"] == pytest.approx(1.1)
    assert summary["cpu_overhead"] == pytest.approx(0.07)
    assert summary["noise"] == pytest.approx(0.01)


def test_the_report_states_the_verdict_from_the_figure() -> None:
    measured = [
        _m(SINGLE, 0, 20.0, 4.0),
        _m(EXPERIMENT, 0, 20.0, 4.4),
        _m(SINGLE_AGAIN, 0, 20.0, 4.08),
    ]
    report = {
        "summary": summarise(measured, [20.0]),
        "args": "--rounds 1",
        "machine": "a test machine",
        "rounds": 1,
        "duration_s": 1.0,
        "wall_s": 2.0,
        "parity": 0.0,
        "arm_split": {"a": 3, "b": 5},
    }
    text = markdown(report)
    assert "+10.0%" in text and "**over** the 5% goal" in text and "differs by +2.0%" in text
    toggled = summarise_toggled(
        {("off", 20.0): [4.0], ("on", 20.0): [4.1], ("off_again", 20.0): [4.04]},
        {"on": [5.0], "off": [4.0]},
        [20.0],
    )
    switched = markdown(report | {"toggled": toggled})
    assert "20 req/s 4.0 → 4.1 ms (off again 4.04)" in switched
    assert "overhead **+2.5%**, within" in switched and "off again against off: +1.0%" in switched
    assert "5.0 ms CPU per request after switching on" in switched and "(+25.0%)" in switched
    toggled["noise"] = 0.06
    assert "not resolved" in markdown(report | {"toggled": toggled}).split("In one process")[1]
    noisy = [_m(SINGLE, 0, 20.0, 4.0), _m(EXPERIMENT, 0, 20.0, 4.1), _m(SINGLE_AGAIN, 0, 20.0, 3.7)]
    assert "not resolved" in markdown(report | {"summary": summarise(noisy, [20.0])})
    report["summary"] = summarise([_m(SINGLE, 0, 20.0, 4.0), _m(EXPERIMENT, 0, 20.0, 4.1)], [20.0])
    assert "within the 5% goal" in markdown(report)


def test_capacity_is_the_median_answered_rate_past_saturation() -> None:
    def at(name: str, round_: int, answered: float) -> Measured:
        return Measured(name, round_, 200.0, 0, 0, None, None, None, answered_rps=answered)

    measured = [
        *(at(SINGLE, r, v) for r, v in enumerate([80.0, 90.0, 85.0])),
        *(at(EXPERIMENT, r, v) for r, v in enumerate([70.0, 68.0, 72.0])),
        *(at(SINGLE_AGAIN, r, v) for r, v in enumerate([84.0, 86.0, 88.0])),
        _m(SINGLE, 0, 20.0, 4.0),
    ]
    found = capacities(measured, 200.0)
    assert (found[SINGLE], found[EXPERIMENT], found[SINGLE_AGAIN]) == (85.0, 70.0, 86.0)
    assert found["ratio"] == pytest.approx(70 / 85, abs=1e-4)


def test_added_work_is_timed_on_real_experiment_parts() -> None:
    config = {
        "name": "x",
        "version": 1,
        "arms": [
            {"name": "a", "bundle": "one", "share": 0.5},
            {"name": "b", "bundle": "two", "share": 0.5},
        ],
    }
    body = json.dumps({"user_id": "u1", "candidates": [f"i{n}" for n in range(50)], "top_k": 10})
    assert 0.0 < added_work_us(config, body.encode(), repeats=50) < 1e6


def test_every_state_takes_every_place_in_the_order_over_three_rounds() -> None:
    orders = [rotated(r) for r in range(3)]
    assert all(sorted(order) == ["off", "off_again", "on"] for order in orders)
    for place in range(3):
        assert {order[place] for order in orders} == {"off", "on", "off_again"}
