"""The configurable limits: ID length and characters, timeout_ms, top_k, body size; always a 4xx
that says what to change."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import ValidationError

from service.settings import Settings
from tests.support.exposition import value
from tests.support.serving import ADMIN_KEY, Serving

pytestmark = pytest.mark.anyio

EVENT = {"item_id": "i1", "event": "click", "ts": 1_764_000_000}


@pytest.fixture
async def api(serving: Serving) -> AsyncIterator[httpx.AsyncClient]:
    limits = {
        "max_id_length": 8,
        "id_pattern": r"[a-z][a-z0-9]*",
        "max_timeout_ms": 200,
        "max_candidates": 5,
        "max_body_bytes": 2048,
    }
    async with serving(**limits) as client:
        yield client


async def _rank(api: httpx.AsyncClient, **body: object) -> httpx.Response:
    return await api.post("/v1/rank", json={"user_id": "u1", "candidates": ["i1"], **body})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"user_id": "u123456789"}, "user_id 'u123456789' has 10 characters; at most 8"),
        ({"candidates": ["i1", "i-2"]}, "candidates 'i-2' has characters outside the allowed set"),
        ({"recent_events": [{**EVENT, "item_id": "I1"}]}, "recent_events.item_id 'I1'"),
    ],
)
async def test_ids_past_the_configured_limits_are_named(
    api: httpx.AsyncClient, body: dict[str, object], message: str
) -> None:
    response = await _rank(api, **body)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_id"
    assert response.json()["detail"].startswith(message)


async def test_a_long_id_is_quoted_short(api: httpx.AsyncClient) -> None:
    response = await _rank(api, user_id="u" * 200)
    detail = response.json()["detail"]
    assert response.status_code == 422 and "200 characters" in detail and len(detail) < 120


async def test_ids_within_the_limits_rank(api: httpx.AsyncClient) -> None:
    response = await _rank(api, user_id="u12345", candidates=["i1", "i22"], timeout_ms=200)
    assert response.status_code == 200, response.text


async def test_admin_ids_follow_the_same_limits(api: httpx.AsyncClient) -> None:
    headers = {"X-API-Key": ADMIN_KEY}
    path = "/v1/admin/users/{}/events"
    bad_user = await api.post(path.format("U_1"), json={"events": [EVENT]}, headers=headers)
    bad_item = await api.post(
        path.format("u1"), json={"events": [{**EVENT, "item_id": "x!"}]}, headers=headers
    )
    assert [bad_user.status_code, bad_item.status_code] == [422, 422]
    assert bad_user.json()["code"] == bad_item.json()["code"] == "invalid_id"


@pytest.mark.parametrize("timeout_ms", [1, 200])
async def test_timeouts_within_the_range_pass_validation(
    api: httpx.AsyncClient, timeout_ms: int
) -> None:
    # A 1 ms budget may run out while scoring (503 deadline_exceeded): not a validation error.
    assert (await _rank(api, timeout_ms=timeout_ms)).status_code != 422


async def test_timeouts_outside_the_range_are_422(api: httpx.AsyncClient) -> None:
    assert (await _rank(api, timeout_ms=0)).status_code == 422
    response = await _rank(api, timeout_ms=201)
    assert response.status_code == 422
    assert response.json() == {
        "detail": "timeout_ms 201 is over the limit: at most 200",
        "code": "invalid_timeout",
    }


@pytest.mark.parametrize(("top_k", "status"), [(1, 200), (5, 200), (6, 422), (0, 422)])
async def test_top_k_range_follows_max_candidates(
    api: httpx.AsyncClient, top_k: int, status: int
) -> None:
    assert (await _rank(api, top_k=top_k)).status_code == status


async def test_an_oversize_body_is_413(api: httpx.AsyncClient) -> None:
    response = await _rank(api, context={f"k{n}": "v" * 60 for n in range(40)})
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert "limited to 2048 bytes" in response.json()["detail"]
    metrics = (await api.get("/metrics")).text
    assert value(metrics, "reaseq_requests_total", route="/v1/rank", status="413") == 1


async def test_a_streamed_oversize_body_is_413(api: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"user_id": "u1", "candidates": ["i1"'
        for _ in range(30):
            yield b', "i1"' * 20

    response = await api.post(
        "/v1/rank", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["detail"].endswith("send fewer candidates or events per request")


async def test_bodies_within_the_limit_pass(api: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"user_id": "u1", '
        yield b'"candidates": ["i1", "i3"]}'

    response = await api.post(
        "/v1/rank", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text


async def test_an_undecodable_body_is_400_with_a_code(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/rank", content=b"\xff\xfe\x00", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


@pytest.mark.parametrize(
    "overrides",
    [{"id_pattern": "[a-z"}, {"max_id_length": 257}, {"max_timeout_ms": 0}, {"max_body_bytes": 1}],
)
def test_bad_limits_are_refused_at_start(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(**overrides)  # type: ignore[arg-type]
