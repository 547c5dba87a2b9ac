"""Request limits: the ceilings the API schema states, the narrower ones an operator sets, and the
one check of a rank request against them.

The schema (:mod:`service.http.schemas`) holds fixed ceilings so that the OpenAPI document does not
depend on the environment. ``REASEQ_MAX_CANDIDATES``, ``REASEQ_MAX_RECENT_EVENTS``,
``REASEQ_MAX_ID_LENGTH``, ``REASEQ_ID_PATTERN`` and ``REASEQ_MAX_TIMEOUT_MS`` may only narrow
them; :meth:`RequestLimits.check_rank` checks a request the schema has passed against those, and
the ID checks cost nothing when the ID limits are left at the ceiling.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.errors import (
    DuplicateCandidates,
    InvalidIdentifier,
    InvalidTimeout,
    InvalidTopK,
    TooManyCandidates,
    TooManyEvents,
)

if TYPE_CHECKING:
    from service.ranking.pipeline import RankQuery

#: Longest user or item ID the schema accepts, in characters.
MAX_ID_LENGTH = 256
#: IDs are printable text: control characters would break the store's item-list encoding.
PRINTABLE_ID = r"^[^\x00-\x1f\x7f]+$"
#: Largest ``timeout_ms`` the schema accepts.
MAX_TIMEOUT_MS = 60_000
#: Ceiling of ``REASEQ_MAX_CANDIDATES``, and so of ``top_k``, the schema states.
MAX_CANDIDATES = 10_000
#: How much of a rejected ID an error message quotes.
_QUOTED_CHARACTERS = 40
#: How many repeated candidates a refusal names.
_NAMED_DUPLICATES = 10


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """The limits of this deployment that the schema cannot express, and the defaults a request
    takes when it names none."""

    max_candidates: int = 2000
    max_recent_events: int = 256
    max_id_length: int = MAX_ID_LENGTH
    id_pattern: re.Pattern[str] | None = None
    max_timeout_ms: int = MAX_TIMEOUT_MS
    default_top_k: int | None = None
    default_timeout_ms: int | None = None

    @property
    def narrows_ids(self) -> bool:
        return self.max_id_length < MAX_ID_LENGTH or self.id_pattern is not None

    def check_rank(self, query: RankQuery) -> None:
        """Raise the ``InvalidRankRequest`` naming the first limit or rule ``query`` breaks: its
        IDs, its timeout, then its sizes, ``top_k`` and repeated candidates."""
        self.check_ids("user_id", [query.user_id])
        self.check_ids("candidates", query.candidates)
        self.check_ids("recent_events.item_id", query.recent_events.item_ids)
        self.check_timeout(query.timeout_ms)
        if len(query.candidates) > self.max_candidates:
            raise TooManyCandidates(
                f"{len(query.candidates)} candidates; at most {self.max_candidates} per request"
            )
        if len(query.recent_events) > self.max_recent_events:
            raise TooManyEvents(
                f"{len(query.recent_events)} recent_events; at most {self.max_recent_events}"
            )
        if query.top_k is not None and query.top_k > self.max_candidates:
            raise InvalidTopK(f"top_k {query.top_k} exceeds the {self.max_candidates} limit")
        if len(set(query.candidates)) != len(query.candidates):
            raise DuplicateCandidates(_duplicates(query.candidates))

    def check_ids(self, field: str, ids: Iterable[str]) -> None:
        """Raise :class:`InvalidIdentifier` naming the first ID of ``field`` that breaks a limit."""
        if not self.narrows_ids:
            return
        for value in ids:
            if len(value) > self.max_id_length:
                raise InvalidIdentifier(
                    f"{field} {_quoted(value)} has {len(value)} characters; "
                    f"at most {self.max_id_length}"
                )
            if self.id_pattern is not None and self.id_pattern.fullmatch(value) is None:
                raise InvalidIdentifier(
                    f"{field} {_quoted(value)} has characters outside the allowed set: "
                    f"IDs must match {self.id_pattern.pattern!r}"
                )

    def check_timeout(self, timeout_ms: int | None) -> None:
        if timeout_ms is not None and timeout_ms > self.max_timeout_ms:
            raise InvalidTimeout(
                f"timeout_ms {timeout_ms} is over the limit: at most {self.max_timeout_ms}"
            )


def _duplicates(candidates: list[str]) -> str:
    repeated = [item for item, n in Counter(candidates).items() if n > 1]
    more = len(repeated) - _NAMED_DUPLICATES
    return f"duplicate candidate IDs: {repeated[:_NAMED_DUPLICATES]}" + (
        f" and {more} more" if more > 0 else ""
    )


def _quoted(value: str) -> str:
    if len(value) <= _QUOTED_CHARACTERS:
        return repr(value)
    return repr(value[:_QUOTED_CHARACTERS]) + "…"
