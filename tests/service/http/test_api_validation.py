"""Bad input gets a 4xx with a message a caller can act on, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.serving import Serving

pytestmark = pytest.mark.anyio

EVENT = {"item_id": "i1", "event": "click", "ts": 1_764_000_000}


@pytest.fixture
async def api(serving: Serving) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(max_candidates=5, max_recent_events=3) as client:
        yield client


async def _post(api: httpx.AsyncClient, body: object) -> httpx.Response:
    return await api.post("/v1/rank", json=body)


async def test_too_many_candidates(api: httpx.AsyncClient) -> None:
    response = await _post(api, {"user_id": "u1", "candidates": [f"i{n}" for n in range(6)]})
    assert response.status_code == 413
    assert response.json() == {
        "detail": "6 candidates; at most 5 per request",
        "code": "too_many_candidates",
    }


async def test_duplicate_candidates_are_named(api: httpx.AsyncClient) -> None:
    response = await _post(api, {"user_id": "u1", "candidates": ["i1", "i2", "i1"]})
    assert response.status_code == 422
    assert response.json()["code"] == "duplicate_candidates"
    assert "'i1'" in response.json()["detail"]


async def test_too_many_recent_events(api: httpx.AsyncClient) -> None:
    body = {"user_id": "u1", "candidates": ["i1"], "recent_events": [EVENT] * 4}
    response = await _post(api, body)
    assert response.status_code == 413
    assert response.json()["code"] == "too_many_events"


@pytest.mark.parametrize("top_k", [0, -3, 6, 10**30])
async def test_bad_top_k(api: httpx.AsyncClient, top_k: int) -> None:
    response = await _post(api, {"user_id": "u1", "candidates": ["i1"], "top_k": top_k})
    assert response.status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": "", "candidates": ["i1"]},
        {"user_id": "u1", "candidates": [""]},
        {"user_id": "u1\x00", "candidates": ["i1"]},
        {"user_id": "u1", "candidates": ["i1\x1fi2"]},
        {"user_id": "u" * 300, "candidates": ["i1"]},
        {"user_id": "u1", "candidates": ["i1"], "recent_events": [{**EVENT, "event": "view"}]},
        {"user_id": "u1", "candidates": ["i1"], "recent_events": [{**EVENT, "ts": -1}]},
        {"user_id": "u1", "candidates": ["i1"], "recent_events": [{**EVENT, "ts": 10**20}]},
        {"user_id": "u1", "candidates": ["i1"], "recent_events": [{"item_id": "i1"}]},
        {"user_id": "u1", "candidates": ["i1"], "timeout_ms": 0},
        {"user_id": "u1", "candidates": ["i1"], "timeout_ms": 10**9},
        {"user_id": "u1", "candidates": ["i1"], "candidate": ["typo"]},
        {"user_id": "u1", "candidates": "i1"},
        {"user_id": 42, "candidates": ["i1"]},
        {"user_id": "u1", "candidates": [1, 2]},
        {"user_id": "u1", "candidates": ["i1"], "explain": "maybe"},
        {"user_id": "u1", "candidates": ["i1"], "context": {"scene": ["feed"]}},
        {"user_id": "u1", "candidates": ["i1"], "top_k": 1.5},
        {"user_id": "u1", "candidates": ["i1"], "top_k": "1e400"},
        {"candidates": ["i1"]},
        {"user_id": "u1"},
        [],
        "rank me",
        None,
        12345678901234567890123456789,
    ],
)
async def test_schema_errors_are_422(api: httpx.AsyncClient, body: object) -> None:
    response = await _post(api, body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"not json",
        b"\xff\xfe\x00",
        b'{"user_id": "u1", "candidates": [',
        b"",
        b'{"user_id": "u1", "candidates": ["i1"], "top_k": 1e999}',
        b'{"user_id": "u1", "candidates": ["i1"]}' * 2,
    ],
)
async def test_garbage_bodies_are_4xx(api: httpx.AsyncClient, raw: bytes) -> None:
    response = await api.post("/v1/rank", content=raw, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text


async def test_unicode_ids_are_fine(api: httpx.AsyncClient) -> None:
    body = {
        "user_id": "ユーザー🙂",
        "candidates": ["i1", "商品-ü", "i3"],
        "context": {"scène": "fëed"},
    }
    response = await _post(api, body)
    assert response.status_code == 200
    assert response.json()["degraded"] == [
        "unknown_user",
        "unknown_items",
        "no_generated_behaviours",
    ]


async def test_wrong_method_and_route(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/rank")).status_code == 405
    assert (await api.post("/v1/ranks", json={})).status_code == 404


@pytest.mark.parametrize(
    "field",
    [
        {"explain": 0},
        {"explain": "true"},
        {"top_k": True},
        {"top_k": "3"},
        {"top_k": 3.0},
        {"timeout_ms": True},
        {"timeout_ms": "50"},
        {"recent_events": [{**EVENT, "ts": False}]},
        {"recent_events": [{**EVENT, "ts": "1764000000"}]},
        {"as_of": "1764000000"},
    ],
)
async def test_no_lax_coercion(api: httpx.AsyncClient, field: dict[str, object]) -> None:
    """A boolean or a string where the schema says a number (and the reverse) is a caller's
    bug: answered 422, not guessed."""
    response = await _post(api, {"user_id": "u1", "candidates": ["i1"], **field})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "schema_violation"
    assert response.json()["detail"][0]["loc"][1] == next(iter(field))


async def test_strict_fields_take_their_own_types(api: httpx.AsyncClient) -> None:
    body = {
        "user_id": "u1",
        "candidates": ["i1", "i2"],
        "explain": True,
        "top_k": 1,
        "timeout_ms": 5000,
        "recent_events": [EVENT],
        "as_of": 1_764_000_001,
    }
    response = await _post(api, body)
    assert response.status_code == 200, response.text
    assert len(response.json()["items"]) == 1


def test_the_schema_states_the_rules_the_service_enforces() -> None:
    from cli.openapi import openapi_schema
    from service.ranking.limits import MAX_CANDIDATES

    request = openapi_schema()["components"]["schemas"]["RankRequest"]["properties"]
    top_k = next(s for s in request["top_k"]["anyOf"] if s.get("type") == "integer")
    assert (top_k["minimum"], top_k["maximum"]) == (1, MAX_CANDIDATES)
    assert request["candidates"]["uniqueItems"] is True


def test_max_candidates_is_bounded_by_the_schema_ceiling() -> None:
    from pydantic import ValidationError

    from service.ranking.limits import MAX_CANDIDATES
    from service.settings import Settings

    assert Settings(max_candidates=MAX_CANDIDATES).max_candidates == MAX_CANDIDATES
    with pytest.raises(ValidationError, match="max_candidates"):
        Settings(max_candidates=MAX_CANDIDATES + 1)
