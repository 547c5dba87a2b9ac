"""HTTP request and response bodies."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    WithJsonSchema,
)

from service.contracts.features import EVENT_TYPES
from service.ranking.limits import MAX_CANDIDATES, MAX_ID_LENGTH, MAX_TIMEOUT_MS, PRINTABLE_ID
from service.ranking.result import Degradation

#: 2100-01-01 in Unix seconds: a larger ``ts`` is a unit mistake (ms or µs), not a time.
MAX_TIMESTAMP = 4_102_444_800

# The ceilings; a deployment may narrow them (service/ranking/limits.py).
UserId = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=PRINTABLE_ID)
]
ItemId = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=PRINTABLE_ID)
]
EventId = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=PRINTABLE_ID)
]
EventName = Literal["click", "cart", "purchase"]
#: ``context`` of a rank request: a few short scalars, small enough to log and to key an
#: experiment assignment by.
MAX_CONTEXT_KEYS = 64
MAX_CONTEXT_KEY_LENGTH = 64
MAX_CONTEXT_VALUE_LENGTH = 256
ContextKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_CONTEXT_KEY_LENGTH, pattern=PRINTABLE_ID),
]
ContextValue = (
    Annotated[str, StringConstraints(max_length=MAX_CONTEXT_VALUE_LENGTH)]
    | StrictBool
    | StrictInt
    | Annotated[float, Field(strict=True, allow_inf_nan=False)]
)
RankContext = Annotated[
    dict[ContextKey, ContextValue],
    Field(max_length=MAX_CONTEXT_KEYS),
    # Pydantic would publish the key pattern as patternProperties, which leaves keys outside
    # the pattern, and their values, unconstrained to a reader of the schema.
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_CONTEXT_KEYS,
            "propertyNames": TypeAdapter(ContextKey).json_schema(),
            "additionalProperties": TypeAdapter(ContextValue).json_schema(),
        }
    ),
]
assert tuple(EventName.__args__) == EVENT_TYPES  # type: ignore[attr-defined]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecentEvent(_Body):
    item_id: ItemId
    event: EventName
    # Strict numbers, here and below: ``false`` or ``"3"`` is a caller's bug, not a value.
    ts: int = Field(strict=True, ge=0, le=MAX_TIMESTAMP, description="Unix seconds.")


class RankRequest(_Body):
    user_id: UserId
    candidates: list[ItemId] = Field(
        description="Item IDs to score, without duplicates (422 duplicate_candidates); at most "
        "REASEQ_MAX_CANDIDATES (413 too_many_candidates).",
        json_schema_extra={"uniqueItems": True},
    )
    top_k: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=MAX_CANDIDATES,
        description=f"How many to return; all if null. At most REASEQ_MAX_CANDIDATES "
        f"(default 2000, never over {MAX_CANDIDATES}; 422 invalid_top_k).",
    )
    recent_events: list[RecentEvent] = Field(
        default_factory=list, description="Behaviours newer than the store's, any order."
    )
    context: RankContext | None = Field(
        default=None,
        description="Free-form context of the caller, such as the page or surface the ranking "
        'is shown on (`{"surface": "home_feed", "page": 2}`). The ranking does not use it; '
        "while an experiment runs it may choose the arm: the experiment's "
        "override_context_key names an arm, and a unit of `context:<key>` assigns by that "
        "key's value (a session ID) instead of the user_id. At most "
        f"{MAX_CONTEXT_KEYS} keys of 1 to {MAX_CONTEXT_KEY_LENGTH} printable characters; "
        f"values are strings of at most {MAX_CONTEXT_VALUE_LENGTH} characters, numbers or "
        "booleans (no objects, arrays or null). Else 422.",
    )
    explain: bool = Field(
        default=False, strict=True, description="Add the most-attended behaviours per item."
    )
    arm: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64)] | None = Field(
        default=None,
        description="For tests and QA: the arm of the running experiment that answers, "
        "whatever the assignment says (422 unknown_arm when it has no such arm, 422 "
        "no_experiment when none runs). Omit it in production traffic.",
    )
    timeout_ms: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=MAX_TIMEOUT_MS,
        description="Budget of the request (default REASEQ_DEFAULT_TIMEOUT_MS): the store "
        "fetch gets what is left of it; a request still waiting for scoring when it runs out is "
        "answered 503 deadline_exceeded.",
    )
    as_of: int | None = Field(
        default=None,
        strict=True,  # a number, not a numeric string: a replayed time must not be guessed
        ge=0,
        le=MAX_TIMESTAMP,
        description="Unix seconds: the time the request is scored as of: time gaps of "
        "behaviours are measured from it, and behaviours at or after it (stored or in "
        "recent_events) are not used; default: now. Replay historical traffic with the "
        "request's own time.",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "user_id": "u42",
                    "candidates": ["i7", "i19", "i3"],
                    "top_k": 100,
                    "recent_events": [{"item_id": "i9", "event": "click", "ts": 1764000000}],
                    "context": {"scene": "feed"},
                    "explain": False,
                    "timeout_ms": 50,
                }
            ]
        },
    )


class ScoredItemOut(BaseModel):
    item_id: str
    score: float


class ExplainedBehaviourOut(BaseModel):
    item_id: str
    source: Literal["real", "generated"]
    weight: float


class ExplanationOut(BaseModel):
    item_id: str
    behaviours: list[ExplainedBehaviourOut]


class TimingsOut(BaseModel):
    fetch: float
    model: float
    total: float


class RankResponse(BaseModel):
    request_id: str
    bundle_version: str
    items: list[ScoredItemOut]
    degraded: list[Degradation]
    timings_ms: TimingsOut
    explanations: list[ExplanationOut] | None
    experiment: str | None = Field(description="The running experiment; null when none runs.")
    arm: str | None = Field(description="The experiment's arm that answered; null without one.")


class AppendedEvent(RecentEvent):
    event_id: EventId | None = Field(
        default=None,
        description="Idempotency key: an event whose ID the user's recent events already "
        "carry is not appended again, so a batch can be retried safely.",
    )


class AppendEventsRequest(_Body):
    events: list[AppendedEvent] = Field(
        min_length=1, max_length=10_000, description="Any order: each is inserted by its ts."
    )


class AppendEventsResponse(BaseModel):
    user_id: str
    appended: int = Field(description="Events added to the sequence.")
    duplicates: int = Field(description="Events skipped: their event_id was seen before.")
    sequence_length: int = Field(description="Length of the stored sequence afterwards.")


class ErrorResponse(BaseModel):
    detail: str
    code: str


class FieldError(BaseModel):
    """One schema violation: where (``loc``), what (``msg``), and its machine-readable type."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int]
    msg: str
    type: str


class SchemaErrorResponse(BaseModel):
    detail: list[FieldError]
    code: Literal["schema_violation"]


#: The 400 of a route with a body that cannot be decoded as text.
UNREADABLE_BODY_RESPONSE: dict[str, object] = {
    "model": ErrorResponse,
    "description": "The body cannot be read: it is not UTF-8 text.",
}
#: The 408 of a route with a body: it did not arrive in full within REASEQ_BODY_READ_TIMEOUT_MS.
BODY_TIMEOUT_RESPONSE: dict[str, object] = {
    "model": ErrorResponse,
    "description": "The body did not arrive in full within REASEQ_BODY_READ_TIMEOUT_MS.",
}
#: The 422 of a route with a body: a schema violation, or a rule of the service
#: (duplicate candidates, an ID or a timeout past this deployment's limits).
INVALID_REQUEST_RESPONSE: dict[str, object] = {
    "model": SchemaErrorResponse | ErrorResponse,
    "description": "The body breaks the schema (a list of field errors) or a rule of the service.",
}


class ReadinessResponse(BaseModel):
    status: Literal["ready", "not_ready"]
    bundle_version: str | None = None
    reason: str | None = None
    store_reachable: bool | None = Field(
        default=None,
        description="Whether the store answers now; when not, answers are degraded, not refused.",
    )
    store_error: ErrorResponse | None = Field(
        default=None,
        description="Why the store does not answer, when it does not: store_unavailable (not "
        "reached: check REASEQ_REDIS_URL and the server), store_timeout, store_circuit_open, "
        "store_error.",
    )
