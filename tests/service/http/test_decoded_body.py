"""The decoded-body route: a valid JSON body reaches the route's handler decoded by pydantic-core;
every other body gets FastAPI's own answer, byte for byte; the rank route takes that path."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from service.app import create_app
from service.errors import Unauthorized
from service.http.decoded_body import decoded_body_route, is_json_media_type
from service.http.errors import install_error_handlers
from service.http.schemas import RankRequest
from tests.support.serving import Serving

pytestmark = pytest.mark.anyio


class Order(BaseModel):
    item: str = Field(min_length=1)
    count: int = Field(strict=True, ge=1)
    note: str | None = None


async def _decoded(_: Request, body: Any) -> Response:
    return JSONResponse({"via": "decoded", "order": body.model_dump()})


def _app(decoded: bool) -> FastAPI:
    route_class = decoded_body_route(Order, _decoded) if decoded else fastapi.routing.APIRoute
    router = APIRouter(route_class=route_class)

    @router.post("/orders")
    async def place(body: Order) -> dict[str, object]:
        return {"via": "framework", "order": body.model_dump()}

    app = FastAPI()
    install_error_handlers(app)  # the service's renderings of FastAPI's errors
    app.include_router(router)
    return app


async def _post(app: FastAPI, body: bytes, content_type: str | None) -> httpx.Response:
    headers = {"content-type": content_type} if content_type is not None else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
        return await client.post("/orders", content=body, headers=headers)


VALID = b'{"item": "i1", "count": 2}'


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/x+json",
    ],
)
async def test_a_valid_json_body_reaches_the_handler_decoded(content_type: str) -> None:
    answer = await _post(_app(decoded=True), VALID, content_type)
    assert answer.status_code == 200
    assert answer.json() == {"via": "decoded", "order": {"item": "i1", "count": 2, "note": None}}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/json"),  # no body
        (VALID, None),  # no content type
        (VALID, "text/plain"),  # not JSON
        (VALID, "application/jsonx"),
        (b'{"item": "i1", "count": ', "application/json"),  # unfinished JSON
        (b"\xff\xfe\x00", "application/json"),  # not UTF-8
        ('{"item": "i1", "count": 2}'.encode("utf-16"), "application/json"),  # JSON, not UTF-8
        (b'{"item": "i1", "count": NaN}', "application/json"),  # not standard JSON
        (b'{"item": "", "count": 2}', "application/json"),  # breaks the model
        (b'{"item": "i1", "count": 2.0}', "application/json"),  # a strict field
        (b'[{"item": "i1", "count": 2}]', "application/json"),  # not an object
    ],
)
async def test_every_other_body_gets_the_frameworks_answer(
    body: bytes, content_type: str | None
) -> None:
    fast = await _post(_app(decoded=True), body, content_type)
    plain = await _post(_app(decoded=False), body, content_type)
    assert (fast.status_code, fast.content) == (plain.status_code, plain.content)
    assert "decoded" not in fast.text


def test_json_media_types() -> None:
    assert is_json_media_type("application/json")
    assert is_json_media_type("application/problem+json; charset=utf-8")
    assert not is_json_media_type(None)
    assert not is_json_media_type("")
    assert not is_json_media_type("text/json")
    assert not is_json_media_type("application/json-seq")


async def test_the_rank_route_skips_fastapis_body_and_dependency_solving_for_a_valid_body(
    serving: Serving, monkeypatch: pytest.MonkeyPatch
) -> None:
    solved: list[str] = []
    solve = fastapi.routing.solve_dependencies

    async def counting(*args: Any, **kwargs: Any) -> Any:
        solved.append(kwargs["request"].url.path)
        return await solve(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    async with serving() as client:
        valid = await client.post("/v1/rank", json={"user_id": "u1", "candidates": ["i1", "i3"]})
        assert valid.status_code == 200 and solved == []
        invalid = await client.post("/v1/rank", json={"user_id": "u1", "candidates": "i1"})
    assert invalid.status_code == 422 and invalid.json()["code"] == "schema_violation"
    assert solved == ["/v1/rank"]


async def _call_router(app: FastAPI, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """One POST /v1/rank through the app's router alone, none of its middleware in front."""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "path": "/v1/rank",
        "raw_path": b"/v1/rank",
        "root_path": "",
        "scheme": "http",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("rank", 80),
        "app": app,
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> MutableMapping[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(_: MutableMapping[str, Any]) -> None:
        raise AssertionError("the route answered without an accepted key")

    await app.router(scope, receive, send)


async def test_the_decoded_rank_path_checks_the_key_itself(make_settings: Any) -> None:
    """Without the middleware in front (the app's bare router), the route still refuses a
    request without an accepted key before it ranks."""
    app = create_app(make_settings(api_keys="right"))
    body = json.dumps(RankRequest(user_id="u1", candidates=["i1"]).model_dump()).encode()
    async with app.router.lifespan_context(app):
        for headers in ([(b"x-api-key", b"wrong")], [(b"x-api-key", b"")], []):
            with pytest.raises(Unauthorized):
                await _call_router(app, body, headers)


def test_the_decoded_rank_path_runs_every_dependency_the_route_declares() -> None:
    """``_rank_decoded`` calls the route's dependencies itself; a dependency added to the route
    and not there would be skipped for every valid body, so the list is pinned here."""
    from service.routes import rank as rank_route
    from service.routes.access import require_rank_key
    from service.routes.deps import get_metrics, get_request_limits, get_runtime

    (route,) = [r for r in rank_route.router.routes if getattr(r, "path", "") == "/v1/rank"]
    declared = {dependency.call for dependency in route.dependant.dependencies}  # type: ignore[attr-defined]
    assert declared == {require_rank_key, get_runtime, get_metrics, get_request_limits}
