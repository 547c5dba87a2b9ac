"""The chaos report's figures from recorded answers."""

from __future__ import annotations

from chaos.report import recovery_s, version_flip
from chaos.traffic import Answer, Outcome

N, D, F = Outcome.NORMAL, Outcome.DEGRADED, Outcome.FAILED


def _answers(*outcomes: Outcome, step_s: float = 0.25) -> list[Answer]:
    return [Answer(n * step_s, 1.0, outcome, "v1") for n, outcome in enumerate(outcomes)]


def test_recovery_is_the_start_of_the_first_clean_second() -> None:
    answers = _answers(D, D, D, N, D, N, N, N, N, N, N)
    assert recovery_s(answers, cleared_s=0.0, end_s=10.0) == 1.25
    assert recovery_s(_answers(N, N, N, N, N), cleared_s=0.0, end_s=10.0) == 0.0
    assert recovery_s(_answers(F, F, N, N), cleared_s=0.0, end_s=1.0) is None


def test_version_flip_counts_old_answers_after_the_first_new_one() -> None:
    answers = [
        Answer(0.0, 1.0, N, "v1"),
        Answer(1.0, 1.0, N, "v2"),
        Answer(1.5, 1.0, N, "v1"),
        Answer(2.0, 1.0, N, "v2"),
    ]
    assert version_flip(answers, "v1", "v2") == {
        "first_new_s": 1.0,
        "last_old_s": 1.5,
        "old_after_first_new": 1,
    }


def test_the_redis_outage_note_names_the_measured_reasons() -> None:
    """The prose of the outage names what the run measured: a killed Redis is not reached
    (store_unavailable), not slow (store_timeout)."""
    from chaos.__main__ import _fault_notes

    outage = {
        "phase": "redis_outage",
        "down_s": 10.0,
        "degraded_by_reason": {"store_unavailable": 400, "unknown_user": 3},
    }
    (note,) = _fault_notes([outage], {}, {})
    assert "(`store_unavailable`, from the bundle's item table)" in note
    assert "store_timeout" not in note
