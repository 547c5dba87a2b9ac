"""A route class whose JSON body pydantic-core decodes straight from the request's bytes.

For every request FastAPI parses a body with the standard library's ``json``, validates the
resulting Python objects against the model, then solves the route's dependency graph. On the
rank route that is a good part of the event loop's time per request. A route made by
:func:`decoded_body_route` keeps the FastAPI endpoint as it is declared, so the OpenAPI document,
the dependencies and every error answer stay FastAPI's, and puts a shorter handler in front of
it: a JSON body that ``Model.model_validate_json`` accepts (one pass over the bytes, in Rust) goes
to the route's own ``handler`` with the decoded model. Every other request, with no body, another
content type, unreadable or invalid JSON, or a body the model refuses, goes to FastAPI's handler
and gets the answer it always had (the body, read once, is kept by the request). Both decoders
take the same JSON to the same model; where they might differ (a UTF-16 body, a bare ``NaN``),
the fast one refuses and the framework decides.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

DecodedHandler = Callable[[Request, Any], Awaitable[Response]]


def is_json_media_type(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` names JSON the way FastAPI reads it: ``application/json`` or
    ``application/<anything>+json``, parameters and case aside."""
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    main, _, subtype = media_type.partition("/")
    return main == "application" and (subtype == "json" or subtype.endswith("+json"))


def decoded_body_route(model: type[BaseModel], handler: DecodedHandler) -> type[APIRoute]:
    """An :class:`APIRoute` class whose requests with a valid JSON ``model`` body are answered
    by ``handler(request, body)``; the others by the endpoint, through FastAPI.

    ``handler`` must do what the endpoint's dependencies do (key checks, readiness) in the same
    order, since FastAPI does not run them for it."""

    class DecodedBodyRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            framework = super().get_route_handler()

            async def decode_then_answer(request: Request) -> Response:
                body = await request.body()
                if not body or not is_json_media_type(request.headers.get("content-type")):
                    return await framework(request)
                try:
                    decoded = model.model_validate_json(body)
                except ValidationError:
                    return await framework(request)
                return await handler(request, decoded)

            return decode_then_answer

    DecodedBodyRoute.__qualname__ = f"DecodedBodyRoute[{model.__name__}]"
    return DecodedBodyRoute
