"""The prediction log's records: the one contract between the service that writes them and the
offline report and replay that read them.

A log is JSON Lines, one record an object, in files named ``predictions-*.jsonl`` under one
folder (a writer rotates to a new file by size; readers take every matching file, oldest name
first), or the entries of the Redis stream :data:`PREDICTION_STREAM` (field :data:`STREAM_FIELD`
holds the same JSON object). Two kinds of record:

- ``prediction``: one answer of one arm (or one shadow arm's ranking of the same request).
  ``items`` and ``scores`` are in the order returned: an item's position is its index (0 first).
- ``outcome``: what the user did with an item of an answer, keyed by the answer's request ID.

Readers must skip records of an unknown ``kind`` and keys they do not know: later versions may
add both.
"""

from __future__ import annotations

from typing import Final, Literal, NotRequired, TypedDict

from service.contracts.keys import PREFIX

#: Bumped when a field changes meaning or is removed (adding one does not bump it).
RECORD_FORMAT: Final = 1
LOG_FILE_PREFIX: Final = "predictions-"
LOG_FILE_SUFFIX: Final = ".jsonl"
LOG_FILE_GLOB: Final = f"{LOG_FILE_PREFIX}*{LOG_FILE_SUFFIX}"
PREDICTION_STREAM: Final = f"{PREFIX}:predictions"
STREAM_FIELD: Final = "r"

OutcomeName = Literal["click", "order"]
OUTCOMES: Final = ("click", "order")


class PredictionRecord(TypedDict):
    kind: Literal["prediction"]
    format: int
    ts: float  # Unix seconds of the answer
    request_id: str
    user_id: str
    experiment: str | None  # None when no experiment runs
    experiment_version: int | None
    arm: str | None
    shadow: bool  # True: a shadow arm's ranking, never shown to the user
    bundle_version: str
    items: list[str]  # returned item IDs, position 0 first
    scores: list[float]  # same order as items
    candidates: int  # how many candidates the request sent
    degraded: list[str]
    context: NotRequired[dict[str, str | bool | int | float] | None]


class OutcomeRecord(TypedDict):
    kind: Literal["outcome"]
    format: int
    ts: float  # Unix seconds of the outcome (the caller's, else arrival)
    request_id: str  # the answer it follows
    item_id: str
    outcome: OutcomeName
    user_id: NotRequired[str | None]
