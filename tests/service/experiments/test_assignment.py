"""Assignment of units to arms: sticky, uniform by share, independent across salts, and the
overrides before the hash."""

from __future__ import annotations

from collections import Counter

import pytest

from service.errors import UnknownArm
from service.experiments.assignment import (
    BUCKETS,
    ArmAssignment,
    AssignedBy,
    bucket,
    bucket_bounds,
)
from service.experiments.config import ExperimentConfig
from tests.support.experiments import experiment

USERS = [f"user-{n}" for n in range(100_000)]
TOLERANCE = 0.01  # one percentage point


def _assignment(
    shares: tuple[float, ...], salt: str | None = None, **fields: object
) -> ArmAssignment:
    arms = tuple((f"arm{n}", "test-1", share) for n, share in enumerate(shares))
    body = experiment(arms=arms, **fields) | ({"salt": salt} if salt is not None else {})
    return ArmAssignment(ExperimentConfig.model_validate(body))


def test_a_unit_stays_in_its_arm_across_calls_and_objects() -> None:
    first = [_assignment((0.5, 0.5)).by_hash(user) for user in USERS[:2000]]
    again = _assignment((0.5, 0.5))
    assert [again.by_hash(user) for user in USERS[:2000]] == first
    assert [again.assign(user)[0] for user in USERS[:2000]] == first
    assert len(set(first)) == 2


def test_the_bucket_is_the_documented_hash() -> None:
    import hashlib

    digest = hashlib.blake2b(b"salt\x1fu42", digest_size=8).digest()
    assert bucket("salt", "u42") == int.from_bytes(digest, "big") % BUCKETS


@pytest.mark.parametrize("shares", [(0.5, 0.5), (0.9, 0.1), (0.2, 0.3, 0.5)])
def test_units_split_by_share(shares: tuple[float, ...]) -> None:
    assignment = _assignment(shares)
    counts = Counter(assignment.by_hash(user) for user in USERS)
    for n, share in enumerate(shares):
        assert counts[f"arm{n}"] / len(USERS) == pytest.approx(share, abs=TOLERANCE)


def test_salts_assign_independently() -> None:
    first = _assignment((0.5, 0.5), salt="salt-1")
    second = _assignment((0.5, 0.5), salt="salt-2")
    both = sum(first.by_hash(user) == "arm0" and second.by_hash(user) == "arm0" for user in USERS)
    assert both / len(USERS) == pytest.approx(0.25, abs=TOLERANCE)


def test_the_salt_defaults_to_the_name() -> None:
    config = ExperimentConfig.model_validate(experiment(name="exp-7"))
    assert config.salt == "exp-7"
    named = _assignment((0.5, 0.5), name="exp-7")
    salted = _assignment((0.5, 0.5), name="other", salt="exp-7")
    assert [named.by_hash(u) for u in USERS[:500]] == [salted.by_hash(u) for u in USERS[:500]]


def test_raising_a_share_moves_units_only_into_the_growing_arm() -> None:
    before = _assignment((0.9, 0.1))
    after = _assignment((0.5, 0.5))
    moves = Counter((before.by_hash(u), after.by_hash(u)) for u in USERS[:20_000])
    assert moves[("arm1", "arm0")] == 0


def test_bounds_are_contiguous_and_end_at_every_bucket() -> None:
    assert bucket_bounds([0.5, 0.5]) == [5000, BUCKETS]
    assert bucket_bounds([0.9, 0.1]) == [9000, BUCKETS]
    assert bucket_bounds([1 / 3, 1 / 3, 1 / 3]) == [3333, 6667, BUCKETS]


def test_the_request_field_comes_first_then_the_context_key_then_the_hash() -> None:
    assignment = _assignment((0.5, 0.5), override_context_key="qa_arm")
    hashed = assignment.by_hash("u1")
    other = "arm1" if hashed == "arm0" else "arm0"
    assert assignment.assign("u1", {"qa_arm": other}, other) == (other, AssignedBy.REQUEST)
    assert assignment.assign("u1", {"qa_arm": other}) == (other, AssignedBy.CONTEXT)
    assert assignment.assign("u1", {"qa_arm": hashed}, other)[0] == other
    # A value that names no arm, or is not text, is assigned as usual.
    assert assignment.assign("u1", {"qa_arm": "nope"}) == (hashed, AssignedBy.HASH)
    assert assignment.assign("u1", {"qa_arm": 1}) == (hashed, AssignedBy.HASH)


def test_an_unknown_requested_arm_names_the_arms() -> None:
    with pytest.raises(UnknownArm, match="arm0, arm1"):
        _assignment((0.5, 0.5)).assign("u1", None, "arm9")


def test_a_context_unit_assigns_by_its_value_else_by_the_user() -> None:
    assignment = _assignment((0.5, 0.5), unit="context:session")
    sessions = [f"s{n}" for n in range(200)]
    by_session = [assignment.assign("same-user", {"session": s})[0] for s in sessions]
    assert by_session == [assignment.by_hash(s) for s in sessions]
    assert len(set(by_session)) == 2, "one user's sessions land in both arms"
    assert assignment.assign("u7", {"page": 2})[0] == assignment.by_hash("u7")
    assert assignment.assign("u7", None)[0] == assignment.by_hash("u7")
    assert assignment.assign("u7", {"session": 12})[0] == assignment.by_hash("12")
    assert assignment.assign("u7", {"session": True})[0] == assignment.by_hash("true")
