"""The real-data generator lines read what the paired intervals say, never more."""

from __future__ import annotations

from typing import Any

import pytest

from model_export.real_gbr_lines import gbr_lines


def _gap(low: float, high: float, users: int) -> dict[str, float | int]:
    return {"mean": round((low + high) / 2, 4), "low": low, "high": high, "users": users}


def _runs(frozen: list[tuple[float, float]], rolled: list[tuple[float, float]]) -> list[dict]:
    runs = []
    for seed, (first, second) in enumerate(zip(frozen, rolled, strict=True)):
        rolling = {
            "points": 400, "users": 40, "horizon": 16, "k": 16,
            "recall": {"gbr_world": 0.07, "cooccurrence": 0.07},
            "versus_cooccurrence": {"gbr_world": _gap(*second, 40), "gbr": _gap(*second, 40)},
        }  # fmt: skip
        runs.append(
            {
                "seed": seed,
                "best_epoch": {},
                "generator": {
                    "targets": "test period",
                    "recall": {"gbr_world": 0.05, "cooccurrence": 0.07},
                    "versus_cooccurrence": {"gbr_world": _gap(*first, 12)},
                    "rolling": rolling,
                },
            }
        )
    return runs


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    figure = {"mean": 0.07, "std": 0.0}
    recall = {"gbr_world": figure, "cooccurrence": figure}
    return {"generator": {"recall": recall, "rolling": {"recall": recall}}}


@pytest.mark.parametrize(
    ("rolled", "reading"),
    [
        ([(-0.01, 0.02), (-0.03, 0.01)], "each interval holds 0, and none reaches beyond ±0.0300"),
        ([(0.01, 0.02), (0.001, 0.03)], "above co-occurrence in every seed"),
        ([(-0.02, -0.01), (-0.03, -0.001)], "below co-occurrence in every seed"),
        ([(0.01, 0.02), (-0.03, 0.01)], "in 1 of 2 seeds (1 above, 0 below)"),
    ],
)
def test_the_reading_follows_the_intervals(rolled: list[tuple[float, float]], reading: str) -> None:
    runs = _runs([(-0.2, 0.1), (-0.1, 0.05)], rolled)
    lines = gbr_lines(_summary(runs), runs, ())
    frozen = next(line for line in lines if "over the 12 test-period users" in line)
    assert "none reaches beyond ±0.2000" in frozen
    rolling = next(line for line in lines if "rolled recall@16 paired over the 40 users" in line)
    assert reading in rolling
    # Points and users are the same in every seed here: written once.
    assert any("400 points of 40 users" in line for line in lines)


def test_the_blend_line_names_each_seeds_choice_and_its_gain() -> None:
    runs = _runs([(-0.2, 0.1), (-0.1, 0.05)], [(0.01, 0.02), (0.001, 0.03)])
    validation = (
        {"0/0": 0.06, "0.5/0": 0.08, "0.5/2": 0.07},
        {"0/0": 0.05, "0.5/0": 0.07, "0.5/2": 0.09},
    )
    for run, recall, (weight, slots) in zip(runs, validation, ((0.5, 0), (0.5, 2)), strict=True):
        run["generator"] |= {
            "validation_recall": recall,
            "log_weight": weight,
            "beyond_slots": slots,
        }
    lines = gbr_lines(_summary(runs), runs, ())
    line = next(line for line in lines if "chosen per seed" in line)
    assert "co-occurrence / beyond-log slots 0.5 / 0, 0.5 / 2 " in line
    assert "0 / 0 0.0550, 0.5 / 0 0.0750, 0.5 / 2 0.0800" in line
    # The best pair on average (0.5 / 2) against the generator alone.
    assert "(0.5 / 2) recalls +0.0250 more than the generator alone" in line
    # A run recorded before the blend existed has no such line.
    for run in runs:
        del run["generator"]["log_weight"]
    assert not any("chosen per seed" in line for line in gbr_lines(_summary(runs), runs, ()))


@pytest.mark.parametrize(
    ("validation", "reading"),
    [
        ({"mean": 0.00004, "std": 0.0001}, "validation cannot tell the two apart (within 2 std)"),
        ({"mean": 0.002, "std": 0.0005}, "validation favours them."),
        ({"mean": -0.002, "std": 0.0005}, "validation favours the ranker without them."),
    ],
)
def test_the_slot_line_reads_validation_by_its_spread(
    validation: dict[str, float], reading: str
) -> None:
    parts = (("overall", "overall"),)
    gain = {"overall/gauc": {"mean": -0.0002, "std": 0.0004}, "validation/gauc": validation}
    lines = gbr_lines({"slot_gain": gain}, [], parts)
    assert len(lines) == 1 and lines[0].startswith("- Slot vectors (a learned vector per slot")
    assert "GAUC: overall -0.0002 ± 0.0004; on validation " in lines[0]
    assert lines[0].endswith(reading if reading.endswith(".") else reading + ".")
