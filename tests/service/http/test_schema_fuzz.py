"""Property-based fuzzing of every operation in the OpenAPI schema, over real HTTP.

schemathesis draws requests from the schema the running service publishes, both valid ones and
ones that break it (negative mode), and sends them to a real ``python -m service`` process. Every
answer must be a documented status with a body that matches its documented schema; none may be
a 5xx, with one documented exception: a caller may set a budget (``timeout_ms``) too small to be
met, and a request whose budget runs out before it is scored is answered 503 deadline_exceeded
rather than late. Only that answer, to a request that asked for a budget that small, passes. A
bounded number of examples per operation keeps the run to seconds.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cli.openapi import openapi_schema
from tests.support.http_server import ServiceProcess, module_service

ADMIN_KEY = "fuzz-admin-key"
EXAMPLES_PER_OPERATION = 40
# A budget under this may run out on this machine before scoring starts, whatever the load.
UNMEETABLE_BUDGET_MS = 20


def _asked_for_an_unmeetable_budget(case: schemathesis.Case) -> bool:
    budget = case.body.get("timeout_ms") if isinstance(case.body, dict) else None
    return isinstance(budget, int) and budget < UNMEETABLE_BUDGET_MS


def not_a_server_error_unless_out_of_budget(
    ctx: CheckContext, response: Response, case: schemathesis.Case
) -> bool | None:
    """No 5xx, except the documented 503 deadline_exceeded to a request with a tiny budget."""
    if (
        response.status_code == 503
        and case.path == "/v1/rank"
        and _asked_for_an_unmeetable_budget(case)
        and response.json().get("code") == "deadline_exceeded"
    ):
        return None
    return not_a_server_error(ctx, response, case)


CHECKS = [
    not_a_server_error_unless_out_of_budget,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


fuzzed_service = module_service("fuzz", admin_api_key=ADMIN_KEY, access_log="false")


# The schema the service publishes: building the app reads no bundle, and the schema does not
# depend on settings (a test of docs/API.md checks that too).
schema = schemathesis.openapi.from_dict(openapi_schema())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_errors_or_breaks_its_schema(
    case: schemathesis.Case, fuzzed_service: ServiceProcess
) -> None:
    headers = {"X-API-Key": ADMIN_KEY} if case.path.startswith("/v1/admin") else None
    try:
        case.call_and_validate(
            base_url=fuzzed_service.url, headers=headers, checks=CHECKS, timeout=10
        )
    except Exception:
        # The server's warnings and tracebacks, in the report of a failing example.
        print(fuzzed_service.log.read_text()[-6000:])
        raise
