"""POST /v1/admin/users/{user_id}/events over each store: idempotent by event ID, in time order."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.serving import ADMIN_KEY
from tests.support.users import NOW

pytestmark = pytest.mark.anyio

HEADERS = {"X-API-Key": ADMIN_KEY}


def _event(item: str, ts: int, event_id: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"item_id": item, "event": "click", "ts": NOW + ts}
    if event_id is not None:
        event["event_id"] = event_id
    return event


async def _append(client: httpx.AsyncClient, user: str, *events: dict[str, Any]) -> Any:
    response = await client.post(
        f"/v1/admin/users/{user}/events", json={"events": list(events)}, headers=HEADERS
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_replayed_batch_is_counted_not_appended(client: httpx.AsyncClient) -> None:
    batch = [_event("i7", 1, "order-1"), _event("i8", 2, "order-2")]
    first = await _append(client, "buyer", *batch)
    assert first == {"user_id": "buyer", "appended": 2, "duplicates": 0, "sequence_length": 2}
    again = await _append(client, "buyer", *batch, _event("i9", 3, "order-3"))
    assert again == {"user_id": "buyer", "appended": 1, "duplicates": 2, "sequence_length": 3}


async def test_late_events_take_their_place_in_time(client: httpx.AsyncClient) -> None:
    await _append(client, "late", _event("i7", 30, "b"))
    body = await _append(client, "late", _event("i3", 10, "a"))
    assert body["sequence_length"] == 2
    ranked = await client.post(
        "/v1/rank", json={"user_id": "late", "candidates": ["i1"], "explain": True}
    )
    behaviours = ranked.json()["explanations"][0]["behaviours"]
    assert {b["item_id"] for b in behaviours if b["source"] == "real"} == {"i3", "i7"}


async def test_event_ids_are_printable(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/admin/users/u1/events",
        json={"events": [_event("i1", 0, "bad\x1fid")]},
        headers=HEADERS,
    )
    assert response.status_code == 422
