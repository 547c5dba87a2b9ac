"""Which arm answers a request: an explicit override, else a hash of the assignment unit.

The hash is a pure function of the experiment's salt and the unit's value (a user ID, or a
context value such as a session ID): every replica, and the same replica after a restart, puts a
unit in the same arm, with no state to share. ``blake2b(salt + "\\x1f" + value)`` (8 bytes, read
big-endian) modulo :data:`BUCKETS` is the unit's bucket; the arms take contiguous bucket ranges by
their shares, in config order. Another salt gives an assignment independent of this one.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Final

from service.errors import UnknownArm
from service.experiments.config import ExperimentConfig

BUCKETS: Final = 10_000
#: Separates the salt from the value, so that ("ab", "c") and ("a", "bc") hash apart.
SEPARATOR: Final = "\x1f"

ContextValue = str | bool | int | float


class AssignedBy(StrEnum):
    """Why a request went to its arm."""

    REQUEST = "request"  # the request's ``arm`` field
    CONTEXT = "context"  # the experiment's override_context_key in the request's context
    HASH = "hash"  # the bucket of its unit


def bucket(salt: str, unit_value: str) -> int:
    """The unit's bucket in ``[0, BUCKETS)`` under ``salt``."""
    digest = hashlib.blake2b(f"{salt}{SEPARATOR}{unit_value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def bucket_bounds(shares: Sequence[float]) -> list[int]:
    """The exclusive upper bucket of each arm: arm ``i`` takes ``[bounds[i-1], bounds[i])``;
    the last bound is always :data:`BUCKETS`."""
    bounds, cumulative = [], 0.0
    for share in shares:
        cumulative += share
        bounds.append(min(BUCKETS, round(cumulative * BUCKETS)))
    bounds[-1] = BUCKETS
    return bounds


class ArmAssignment:
    """Assigns requests to the arms of one experiment configuration."""

    def __init__(self, config: ExperimentConfig) -> None:
        self._experiment = config.name
        self._salt = config.salt
        self._arms = [arm.name for arm in config.arms]
        self._known = frozenset(self._arms)
        self._bounds = bucket_bounds([arm.share for arm in config.arms])
        self._context_unit = config.context_unit
        self._override_key = config.override_context_key

    @property
    def arms(self) -> list[str]:
        return list(self._arms)

    def by_hash(self, unit_value: str) -> str:
        """The arm of a unit value, by its bucket."""
        return self._arms[bisect.bisect_right(self._bounds, bucket(self._salt, unit_value))]

    def assign(
        self,
        user_id: str,
        context: Mapping[str, ContextValue] | None = None,
        requested: str | None = None,
    ) -> tuple[str, AssignedBy]:
        """The arm that answers the request, and why: the ``requested`` arm (an unknown one
        raises :class:`UnknownArm`), else the arm the override context key names, else the
        bucket of the unit (the context value of a ``context:<key>`` unit, else the user)."""
        if requested is not None:
            if requested not in self._known:
                raise UnknownArm(
                    f"arm {requested!r} is not an arm of experiment {self._experiment!r}: "
                    f"choose one of {', '.join(self._arms)}"
                )
            return requested, AssignedBy.REQUEST
        if context:
            if self._override_key is not None:
                named = context.get(self._override_key)
                if isinstance(named, str) and named in self._known:
                    return named, AssignedBy.CONTEXT
            if self._context_unit is not None:
                value = context.get(self._context_unit)
                if value is not None:
                    return self.by_hash(unit_text(value)), AssignedBy.HASH
        return self.by_hash(user_id), AssignedBy.HASH


def unit_text(value: ContextValue) -> str:
    """A context value as the text that is hashed (JSON's spelling of booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)
