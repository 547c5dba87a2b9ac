"""Joining served answers with what users did, by request ID.

An answer is a non-shadow prediction; its outcomes are those with its request ID whose item it
returned (an item clicked twice in one answer counts once). An outcome of a request the log has
no answer for, or of an item the answer did not return, is counted as unmatched and not used.
A shadow prediction is paired with the answer served for the same request: shadows are never
shown, so they have no outcomes of their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from offline.experiments.prediction_log import LogRecord, Outcome, Prediction


@dataclass(frozen=True, slots=True)
class Answer:
    """A served answer and the positions (0 first) of the items clicked and ordered."""

    prediction: Prediction
    clicked: tuple[int, ...]
    ordered: tuple[int, ...]

    @property
    def arm(self) -> str | None:
        return self.prediction.arm

    @property
    def user_id(self) -> str:
        return self.prediction.user_id


@dataclass(frozen=True, slots=True)
class ShadowPair:
    """A shadow arm's ranking of a request and the answer that was served for it."""

    shadow: Prediction
    served: Prediction


@dataclass
class JoinCounts:
    """Records the join could not use, by reason."""

    outcomes_unknown_request: int = 0
    outcomes_item_not_shown: int = 0
    duplicate_outcomes: int = 0
    duplicate_answers: int = 0
    shadows_without_answer: int = 0

    @property
    def unmatched_outcomes(self) -> int:
        return self.outcomes_unknown_request + self.outcomes_item_not_shown

    def as_dict(self) -> dict[str, int]:
        return {
            "unmatched_outcomes": self.unmatched_outcomes,
            "outcomes_unknown_request": self.outcomes_unknown_request,
            "outcomes_item_not_shown": self.outcomes_item_not_shown,
            "duplicate_outcomes": self.duplicate_outcomes,
            "duplicate_answers": self.duplicate_answers,
            "shadows_without_answer": self.shadows_without_answer,
        }


@dataclass
class JoinedLog:
    """Answers with their outcomes, in log order, and the shadow pairs."""

    answers: list[Answer]
    shadows: list[ShadowPair]
    counts: JoinCounts = field(default_factory=JoinCounts)

    def arm_bundles(self) -> dict[str, str]:
        """Each arm's and shadow arm's bundle version, as first logged."""
        versions: dict[str, str] = {}
        for prediction in [a.prediction for a in self.answers] + [p.shadow for p in self.shadows]:
            if prediction.arm is not None:
                versions.setdefault(prediction.arm, prediction.bundle_version)
        return versions


def join(records: Iterable[LogRecord]) -> JoinedLog:
    """Answers (the first prediction of a request ID wins) joined with their outcomes."""
    served: dict[str, Prediction] = {}
    shadows: list[Prediction] = []
    outcomes: list[Outcome] = []
    counts = JoinCounts()
    for record in records:
        if isinstance(record, Outcome):
            outcomes.append(record)
        elif record.shadow:
            shadows.append(record)
        elif record.request_id in served:
            counts.duplicate_answers += 1
        else:
            served[record.request_id] = record
    done: dict[str, dict[str, set[int]]] = {}
    for outcome in outcomes:
        answer = served.get(outcome.request_id)
        if answer is None:
            counts.outcomes_unknown_request += 1
            continue
        try:
            position = answer.items.index(outcome.item_id)
        except ValueError:
            counts.outcomes_item_not_shown += 1
            continue
        by_kind = done.setdefault(outcome.request_id, {"click": set(), "order": set()})
        if position in by_kind[outcome.outcome]:
            counts.duplicate_outcomes += 1
        by_kind[outcome.outcome].add(position)
    answers = []
    for request_id, prediction in served.items():
        found = done.get(request_id, {"click": set(), "order": set()})
        answers.append(
            Answer(prediction, tuple(sorted(found["click"])), tuple(sorted(found["order"])))
        )
    pairs = []
    for shadow in shadows:
        answer = served.get(shadow.request_id)
        if answer is None:
            counts.shadows_without_answer += 1
        else:
            pairs.append(ShadowPair(shadow, answer))
    return JoinedLog(answers, pairs, counts)
