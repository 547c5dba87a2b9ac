"""HTTP bodies of ``POST /v1/outcomes``: what users did with the items of logged answers."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.experiments.records import OutcomeName
from service.http.schemas import MAX_TIMESTAMP, ItemId, UserId
from service.observability.logs import REQUEST_ID_PATTERN

MAX_OUTCOMES = 10_000
#: An answer's ``request_id`` as the service keeps it: the caller's ``X-Request-ID`` when it is
#: 1 to 128 printable ASCII characters without spaces, else a fresh one
#: (:func:`service.observability.logs.request_id_from`).
RequestId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=REQUEST_ID_PATTERN)
]


class Outcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: RequestId = Field(description="The request_id of the answer the item was in.")
    item_id: ItemId
    outcome: OutcomeName = Field(description="click, or order (the item was bought).")
    ts: int | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=MAX_TIMESTAMP,
        description="Unix seconds of the outcome; default: when the service received it.",
    )
    user_id: UserId | None = Field(default=None, description="The user, when the caller has it.")


class OutcomesRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "outcomes": [
                        {"request_id": "5f0c3b", "item_id": "i7", "outcome": "click"},
                        {
                            "request_id": "5f0c3b",
                            "item_id": "i7",
                            "outcome": "order",
                            "ts": 1764000300,
                            "user_id": "u42",
                        },
                    ]
                }
            ]
        },
    )

    outcomes: list[Outcome] = Field(min_length=1, max_length=MAX_OUTCOMES)


class OutcomesAccepted(BaseModel):
    accepted: int = Field(description="Outcomes queued for the prediction log.")
    dropped: int = Field(
        description="Outcomes dropped because the log's queue was full (counted in "
        "reaseq_prediction_log_dropped_total); send them again later."
    )
