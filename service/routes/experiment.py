"""The experiment of this service, behind the admin ``X-API-Key``: show, start or replace, stop."""

from __future__ import annotations

from service.experiments.config import ExperimentConfig
from service.experiments.experiment import ExperimentSource
from service.experiments.schemas import ExperimentResponse, ExperimentStopped, experiment_response
from service.http.schemas import (
    BODY_TIMEOUT_RESPONSE,
    INVALID_REQUEST_RESPONSE,
    UNREADABLE_BODY_RESPONSE,
    ErrorResponse,
)
from service.routes.access import ADMIN_ACCESS_RESPONSES, admin_router
from service.routes.deps import ExperimentsDep, RuntimeDep

router = admin_router(
    {
        **ADMIN_ACCESS_RESPONSES,
        503: {"model": ErrorResponse, "description": "Not ready yet (not_ready)."},
    }
)

_START_ERRORS: dict[int | str, dict[str, object]] = {
    400: UNREADABLE_BODY_RESPONSE,
    404: {
        "model": ErrorResponse,
        "description": "An arm's or shadow's bundle is not under the bundle root (code "
        "bundle_not_found), or admin endpoints are disabled. Nothing changed.",
    },
    408: BODY_TIMEOUT_RESPONSE,
    409: {
        "model": ErrorResponse,
        "description": "Refused; the running experiment (or none) is kept: "
        "stale_experiment_version (the version is not higher than the running one's), "
        "bundle_corrupt, bundle_incompatible (a bundle fails its checks, as in an activation).",
    },
    413: {"model": ErrorResponse, "description": "The body is over REASEQ_MAX_BODY_BYTES."},
    422: {
        **INVALID_REQUEST_RESPONSE,
        "description": "The configuration breaks the schema: shares that do not add up to 1, "
        "a repeated arm name, an unknown field (each field error names its field).",
    },
    503: {
        "model": ErrorResponse,
        "description": "Not ready yet, or the store cannot check a bundle now; nothing changed.",
    },
}


@router.get("/experiment", response_model=ExperimentResponse)
async def show_experiment(experiments: ExperimentsDep) -> ExperimentResponse:
    """The experiment this worker runs, with each arm's and shadow's bundle, when it was loaded
    and what it costs in memory; ``{"experiment": null}`` when none runs."""
    return experiment_response(experiments.running)


@router.put("/experiment", response_model=ExperimentResponse, responses=_START_ERRORS)
async def start_experiment(body: ExperimentConfig, runtime: RuntimeDep) -> ExperimentResponse:
    """Start an experiment on this service, or replace the running one (the new version must
    be higher). Every arm's and shadow's bundle is loaded, verified, warmed up and probed like
    an activation, then the whole experiment is swapped in at once; the replaced one's bundles
    are closed once their requests in flight are done. The other workers of this service follow
    within a second; other replicas are not changed: use REASEQ_EXPERIMENT_FILE for a fleet."""
    shared = runtime.shared_experiment
    if shared is not None:
        return experiment_response(await shared.start(body))
    return experiment_response(await runtime.experiments.start(body, ExperimentSource.ADMIN))


@router.delete("/experiment", response_model=ExperimentStopped)
async def stop_experiment(runtime: RuntimeDep) -> ExperimentStopped:
    """Stop the experiment on this service (its other workers follow within a second): the
    served bundle answers every request again."""
    shared = runtime.shared_experiment
    stopped = await (shared.stop() if shared is not None else runtime.experiments.stop())
    return ExperimentStopped(stopped=stopped.config if stopped is not None else None)
