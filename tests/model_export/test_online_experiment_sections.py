"""docs/RESULTS.md holds sections other commands write: `reaseq results` keeps the real-data and
the experiment sections as they are, and each command replaces only its own."""

from __future__ import annotations

from model_export.results_sections import (
    EXPERIMENT_END,
    EXPERIMENT_START,
    REAL_DATA_END,
    REAL_DATA_START,
    keep_section,
    section_of,
    splice_section,
)

REAL = f"{REAL_DATA_START}\n## Real data\n\nfigures\n{REAL_DATA_END}"
EXPERIMENT = f"{EXPERIMENT_START}\n## Online experiment\n\nCTR\n{EXPERIMENT_END}"


def test_reaseq_results_keeps_both_sections() -> None:
    old = f"# Offline results\n\nold tables\n\n{EXPERIMENT}\n\n{REAL}\n"
    kept = keep_section(old, "# Offline results\n\nnew tables\n")
    assert "old tables" not in kept and "new tables" in kept
    assert section_of(kept, REAL_DATA_START, REAL_DATA_END) == REAL
    assert section_of(kept, EXPERIMENT_START, EXPERIMENT_END) == EXPERIMENT
    assert keep_section("# no sections\n", "# new\n") == "# new\n"


def test_a_section_is_replaced_in_place_or_appended() -> None:
    document = f"# Results\n\n{REAL}\n\ntail\n"
    added = splice_section(document, EXPERIMENT, EXPERIMENT_START, EXPERIMENT_END)
    assert added == f"# Results\n\n{REAL}\n\ntail\n\n{EXPERIMENT}\n"
    newer = EXPERIMENT.replace("CTR", "CTR again")
    replaced = splice_section(added, newer, EXPERIMENT_START, EXPERIMENT_END)
    assert replaced == added.replace(EXPERIMENT, newer)
    assert section_of(replaced, REAL_DATA_START, REAL_DATA_END) == REAL
