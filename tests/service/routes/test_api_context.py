"""``context``: the caller's free-form scalars (page, surface), within documented limits, and
without effect on the ranking."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.http.schemas import (
    MAX_CONTEXT_KEY_LENGTH,
    MAX_CONTEXT_KEYS,
    MAX_CONTEXT_VALUE_LENGTH,
)
from tests.support.serving import Serving

pytestmark = pytest.mark.anyio
BODY = {"user_id": "u1", "candidates": ["i1", "i3", "i5"]}


async def _rank(client: httpx.AsyncClient, context: Any) -> httpx.Response:
    return await client.post("/v1/rank", json=BODY | {"context": context})


async def test_scalars_within_the_limits_are_taken_and_change_nothing(serving: Serving) -> None:
    widest = {
        f"{n:0{MAX_CONTEXT_KEY_LENGTH}d}": "v" * MAX_CONTEXT_VALUE_LENGTH
        for n in range(MAX_CONTEXT_KEYS)
    }
    async with serving() as client:
        plain = await client.post("/v1/rank", json=BODY)
        answers = [
            await _rank(client, context)
            for context in (
                {"surface": "home_feed", "page": 2, "ratio": 0.5, "logged_in": True},
                {"scene": "feed"},
                {},
                None,
                widest,
            )
        ]
    assert plain.status_code == 200
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.json()["items"] == plain.json()["items"]


@pytest.mark.parametrize(
    ("context", "field_error"),
    [
        ({f"k{n}": 1 for n in range(MAX_CONTEXT_KEYS + 1)}, "too_long"),
        ({"k" * (MAX_CONTEXT_KEY_LENGTH + 1): 1}, "string_too_long"),
        ({"": 1}, "string_too_short"),
        ({"line\nbreak": 1}, "string_pattern_mismatch"),
        ({"surface": "v" * (MAX_CONTEXT_VALUE_LENGTH + 1)}, "string_too_long"),
        ({"surface": {"nested": "object"}}, None),
        ({"surface": ["an", "array"]}, None),
        ({"surface": None}, None),
        (["not", "an", "object"], "dict_type"),
        ("surface=home", "dict_type"),
    ],
    ids=[
        "too-many-keys",
        "long-key",
        "empty-key",
        "control-character-in-key",
        "long-value",
        "object-value",
        "array-value",
        "null-value",
        "array",
        "string",
    ],
)
async def test_context_past_its_limits_is_422(
    serving: Serving, context: Any, field_error: str | None
) -> None:
    async with serving() as client:
        answer = await _rank(client, context)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == "schema_violation"
    assert all(error["loc"][:2] == ["body", "context"] for error in body["detail"]), body
    if field_error is not None:
        assert field_error in {error["type"] for error in body["detail"]}, body


def test_the_schema_documents_the_limits() -> None:
    from cli.openapi import openapi_schema

    request = openapi_schema()["components"]["schemas"]["RankRequest"]["properties"]["context"]
    assert "experiment" in request["description"]
    shape = request["anyOf"][0]
    assert shape["maxProperties"] == MAX_CONTEXT_KEYS
    assert shape["propertyNames"]["maxLength"] == MAX_CONTEXT_KEY_LENGTH
    values = shape["additionalProperties"]["anyOf"]
    assert {v["type"] for v in values} == {"string", "boolean", "integer", "number"}
