"""``as_of``: a request scored as of a past time (replayed traffic) sees only the behaviours
before it, with time gaps measured from it; without it, nothing changes."""

from __future__ import annotations

import time

import httpx
import pytest

from service.http.schemas import MAX_TIMESTAMP
from tests.support.exposition import value
from tests.support.serving import Serving
from tests.support.users import NOW

pytestmark = pytest.mark.anyio
DAY = 86_400


async def _rank(client: httpx.AsyncClient, **body: object) -> dict:
    response = await client.post("/v1/rank", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _scores(payload: dict) -> dict[str, float]:
    return {item["item_id"]: item["score"] for item in payload["items"]}


def _real_behaviours(payload: dict) -> set[str]:
    return {
        behaviour["item_id"]
        for explanation in payload["explanations"]
        for behaviour in explanation["behaviours"]
        if behaviour["source"] == "real"
    }


async def test_recent_events_at_or_after_as_of_are_not_used(client: httpx.AsyncClient) -> None:
    # u1's stored sequence ends at NOW - 1000; i12 events from NOW on would dominate it
    events = [{"item_id": "i12", "event": "cart", "ts": NOW + n} for n in range(8)]
    candidates = ["i3", "i4", "i12"]
    replayed = await _rank(
        client, user_id="u1", candidates=candidates, recent_events=events, as_of=NOW
    )
    without = await _rank(client, user_id="u1", candidates=candidates, as_of=NOW)
    assert _scores(replayed) == _scores(without)
    assert replayed["items"][0]["item_id"] != "i12" and replayed["degraded"] == []
    later = await _rank(
        client, user_id="u1", candidates=candidates, recent_events=events, as_of=NOW + 60
    )
    assert later["items"][0]["item_id"] == "i12"


async def test_the_stored_sequence_is_cut_at_as_of(client: httpx.AsyncClient) -> None:
    # u1 did i3 at NOW - 3000 and NOW - 2000, i2 at NOW - 1000
    body = {"user_id": "u1", "candidates": ["i2", "i3"], "explain": True}
    live = await _rank(client, **body)
    assert "i2" in _real_behaviours(live)
    before_i2 = await _rank(client, **body, as_of=NOW - 1000)
    assert _real_behaviours(before_i2) == {"i3"}
    assert before_i2["degraded"] == []
    before_all = await _rank(client, **body, as_of=NOW - 3000)
    assert _real_behaviours(before_all) == set()
    assert before_all["degraded"] == []  # a known user with no history yet, not an unknown one


async def test_default_is_the_clock_and_keeps_every_behaviour(client: httpx.AsyncClient) -> None:
    # An event ahead of the clock (skew) is still used without as_of, as before.
    ahead = int(time.time()) + 3600
    events = [{"item_id": "i12", "event": "cart", "ts": ahead + n} for n in range(8)]
    payload = await _rank(client, user_id="u1", candidates=["i3", "i12"], recent_events=events)
    assert payload["items"][0]["item_id"] == "i12"


async def test_the_user_cache_misses_when_as_of_moves_the_gaps(serving: Serving) -> None:
    body = {"user_id": "u1", "candidates": ["i1", "i3"]}
    async with serving() as client:
        first = await _rank(client, **body, as_of=NOW)
        again = await _rank(client, **body, as_of=NOW + 1)  # the same buckets: the same inputs
        text = (await client.get("/metrics")).text
        assert value(text, "reaseq_user_cache_lookups_total", result="hit") == 1
        assert _scores(first) == _scores(again)
        await _rank(client, **body, as_of=NOW + 30 * DAY)  # same behaviours, older gaps
        await _rank(client, **body, as_of=NOW - 1500)  # fewer behaviours
        text = (await client.get("/metrics")).text
    assert value(text, "reaseq_user_cache_lookups_total", result="hit") == 1
    assert value(text, "reaseq_user_cache_lookups_total", result="miss") == 3


@pytest.mark.parametrize("as_of", [-1, MAX_TIMESTAMP + 1, "1764000000", "yesterday", 1.5, True])
async def test_a_bad_as_of_is_422(client: httpx.AsyncClient, as_of: object) -> None:
    response = await client.post(
        "/v1/rank", json={"user_id": "u1", "candidates": ["i1"], "as_of": as_of}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "as_of"]
