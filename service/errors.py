"""Domain errors of the ranking service; :mod:`service.http.errors` maps them to HTTP."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the service's domain errors; ``code`` is machine-readable."""

    code = "service_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BundleNotFoundError(ServiceError):
    code = "bundle_not_found"


class BundleRejected(ServiceError):
    """A bundle the service will not activate; the served one keeps serving."""

    code = "bundle_rejected"


class BundleCorrupt(BundleRejected):
    """A file is missing or fails its checksum, or a graph breaks the contract."""

    code = "bundle_corrupt"


class BundleIncompatible(BundleRejected):
    """A sound bundle that does not fit the store (unpublished, other dimensions)."""

    code = "bundle_incompatible"


class NoPreviousBundle(BundleRejected):
    code = "no_previous_bundle"


class SchemaViolation(ServiceError):
    """The body or a parameter breaks the API schema: ``detail`` lists the field errors."""

    code = "schema_violation"


class InvalidRankRequest(ServiceError):
    """The request is well-formed JSON but breaks a limit or a rule of the service."""

    code = "invalid_request"


class TooManyCandidates(InvalidRankRequest):
    code = "too_many_candidates"


class TooManyEvents(InvalidRankRequest):
    code = "too_many_events"


class DuplicateCandidates(InvalidRankRequest):
    code = "duplicate_candidates"


class InvalidTopK(InvalidRankRequest):
    code = "invalid_top_k"


class InvalidIdentifier(InvalidRankRequest):
    """A user or item ID breaks the deployment's length or character limit."""

    code = "invalid_id"


class InvalidTimeout(InvalidRankRequest):
    code = "invalid_timeout"


class UnknownArm(InvalidRankRequest):
    """The request's ``arm`` names no arm of the running experiment."""

    code = "unknown_arm"


class NoExperiment(InvalidRankRequest):
    """The request names an ``arm`` while no experiment runs."""

    code = "no_experiment"


class ExperimentRejected(ServiceError):
    """An experiment configuration the service will not start; the running state is kept."""

    code = "experiment_rejected"


class StaleExperimentVersion(ExperimentRejected):
    """A configuration whose version is not higher than the running experiment's."""

    code = "stale_experiment_version"


class BodyTooLarge(ServiceError):
    code = "body_too_large"


class BodyReadTimeout(ServiceError):
    """The body did not arrive within ``REASEQ_BODY_READ_TIMEOUT_MS``."""

    code = "body_timeout"


class HeadersTooLarge(ServiceError):
    """The request line and header fields are over ``REASEQ_MAX_HEADER_BYTES``; answered by the
    HTTP server itself, before any route runs."""

    code = "headers_too_large"


class Overloaded(ServiceError):
    """Every admission slot and queue place is taken, or the queue wait ran out: retry later."""

    code = "overloaded"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StoreError(ServiceError):
    """The store failed in another way: an error reply, an answer that cannot be read."""

    code = "store_error"


class StoreTimeout(StoreError):
    """The store did not answer within the request's budget."""

    code = "store_timeout"


class StoreUnavailable(StoreError):
    """The store cannot be reached: the connection is refused or reset, its host is unknown."""

    code = "store_unavailable"


class StoreCircuitOpen(StoreUnavailable):
    """The store failed repeatedly: calls fail fast, without touching the network, for a while.

    ``opened_by`` is the failure that opened the circuit (a timeout, an unreachable store), so
    that callers can report the cause rather than the breaker."""

    code = "store_circuit_open"

    def __init__(self, message: str, opened_by: StoreError | None = None) -> None:
        super().__init__(message)
        self.opened_by = opened_by


class ServiceNotReady(ServiceError):
    code = "not_ready"


class DeadlineExceeded(ServiceError):
    """The request's budget ran out before it could be scored."""

    code = "deadline_exceeded"


class AdminDisabled(ServiceError):
    code = "admin_disabled"


class PredictionLogOff(ServiceError):
    """Outcomes were sent while the prediction log is off (``REASEQ_PREDICTION_LOG=off``)."""

    code = "prediction_log_off"


class Unauthorized(ServiceError):
    """A missing or unknown ``X-API-Key``."""

    code = "unauthorized"


class AdminUnauthorized(Unauthorized):
    pass
