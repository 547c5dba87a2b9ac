"""Request limits: the ceilings the API schema enforces, and the narrower ones an operator sets.

The schema (``service/schemas.py``) holds fixed ceilings so that the OpenAPI document does not
depend on the environment. ``REASEQ_MAX_ID_LENGTH``, ``REASEQ_ID_PATTERN`` and
``REASEQ_MAX_TIMEOUT_MS`` (and ``REASEQ_MAX_CANDIDATES``, which the pipeline checks) may only
narrow them; :class:`RequestLimits` checks those narrower
limits after the schema has passed a request, and costs nothing when they are left at the ceiling.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from service.errors import InvalidIdentifier, InvalidTimeout

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


@dataclass(frozen=True)
class RequestLimits:
    """The limits of this deployment that the schema cannot express."""

    max_id_length: int = MAX_ID_LENGTH
    id_pattern: re.Pattern[str] | None = None
    max_timeout_ms: int = MAX_TIMEOUT_MS

    @property
    def narrows_ids(self) -> bool:
        return self.max_id_length < MAX_ID_LENGTH or self.id_pattern is not None

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


def _quoted(value: str) -> str:
    if len(value) <= _QUOTED_CHARACTERS:
        return repr(value)
    return repr(value[:_QUOTED_CHARACTERS]) + "…"
