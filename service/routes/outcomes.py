"""POST /v1/outcomes: clicks and orders on the items of answers, into the prediction log."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, status

from service.errors import PredictionLogOff
from service.experiments.records import RECORD_FORMAT, OutcomeRecord
from service.http.outcome_schemas import Outcome, OutcomesAccepted, OutcomesRequest
from service.http.schemas import (
    BODY_TIMEOUT_RESPONSE,
    INVALID_REQUEST_RESPONSE,
    UNREADABLE_BODY_RESPONSE,
    ErrorResponse,
)
from service.routes.access import require_rank_key
from service.routes.deps import RequestLimitsDep, RuntimeDep

router = APIRouter(prefix="/v1", tags=["outcomes"])

_ERRORS: dict[int | str, dict[str, object]] = {
    202: {
        "description": "Queued for the prediction log: how many were accepted, how many "
        "dropped for a full queue."
    },
    400: UNREADABLE_BODY_RESPONSE,
    401: {"model": ErrorResponse, "description": "Missing or wrong X-API-Key (where required)."},
    408: BODY_TIMEOUT_RESPONSE,
    409: {
        "model": ErrorResponse,
        "description": "The prediction log is off (REASEQ_PREDICTION_LOG=off): nothing is "
        "recorded (prediction_log_off).",
    },
    413: {"model": ErrorResponse, "description": "The body is over REASEQ_MAX_BODY_BYTES."},
    422: INVALID_REQUEST_RESPONSE,
    503: {"model": ErrorResponse, "description": "Not ready yet (not_ready)."},
}


@router.post(
    "/outcomes",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OutcomesAccepted,
    responses=_ERRORS,
    dependencies=[Depends(require_rank_key)],
)
async def record_outcomes(
    body: OutcomesRequest, runtime: RuntimeDep, limits: RequestLimitsDep
) -> OutcomesAccepted:
    """Record what users did with items of answers, keyed by the answer's ``request_id``, for
    the offline report to join with the logged answers. Recorded whether or not an experiment
    runs; written behind the answer, so ``accepted`` outcomes may still be lost (a failed write,
    counted in the service's metrics). ``dropped`` ones met a full queue: send them again."""
    prediction_log = runtime.prediction_log
    if prediction_log is None:
        raise PredictionLogOff(
            "the prediction log is off (REASEQ_PREDICTION_LOG=off), so outcomes are not "
            "recorded: set REASEQ_PREDICTION_LOG to experiment or always"
        )
    limits.check_ids("item_id", (outcome.item_id for outcome in body.outcomes))
    limits.check_ids("user_id", (o.user_id for o in body.outcomes if o.user_id is not None))
    received = time.time()
    accepted = sum(prediction_log.record(_record(o, received)) for o in body.outcomes)
    return OutcomesAccepted(accepted=accepted, dropped=len(body.outcomes) - accepted)


def _record(outcome: Outcome, received: float) -> OutcomeRecord:
    return OutcomeRecord(
        kind="outcome",
        format=RECORD_FORMAT,
        ts=float(outcome.ts) if outcome.ts is not None else received,
        request_id=outcome.request_id,
        item_id=outcome.item_id,
        outcome=outcome.outcome,
        user_id=outcome.user_id,
    )
