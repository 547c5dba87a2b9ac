"""POST /v1/rank through the real ASGI stack, over each store backend."""

from __future__ import annotations

import httpx
import pytest

from service.http.schemas import RankResponse
from tests.support.serving import Serving
from tests.support.users import NOW

pytestmark = pytest.mark.anyio


async def _rank(client: httpx.AsyncClient, **body: object) -> dict:
    response = await client.post("/v1/rank", json=body)
    assert response.status_code == 200, response.text
    payload = response.json()
    RankResponse.model_validate(payload)
    return payload  # type: ignore[no-any-return]


def _ids(payload: dict) -> list[str]:
    return [item["item_id"] for item in payload["items"]]


async def test_ranks_what_the_user_did_first(client: httpx.AsyncClient) -> None:
    payload = await _rank(client, user_id="u1", candidates=["i1", "i11", "i3"])
    assert _ids(payload) == ["i3", "i1", "i11"]
    scores = [item["score"] for item in payload["items"]]
    assert scores == sorted(scores, reverse=True)
    assert payload["degraded"] == []
    assert payload["bundle_version"] == "test-1"
    assert payload["explanations"] is None
    timings = payload["timings_ms"]
    assert 0 <= timings["fetch"] <= timings["total"] and 0 <= timings["model"] <= timings["total"]


def _server_timing(header: str) -> dict[str, float]:
    """``name;dur=x`` parts as milliseconds; ``batch;desc=n`` as the batch's request count."""
    found = {}
    for part in header.split(","):
        name, _, value = part.strip().partition(";")
        key, _, number = value.partition("=")
        found[name] = float(number)
        assert key in ("dur", "desc"), part
    return found


async def test_server_timing_breaks_the_request_down(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/rank", json={"user_id": "u1", "candidates": ["i1", "i3"]})
    timing = _server_timing(response.headers["Server-Timing"])
    assert set(timing) == {
        "fetch", "wait", "model", "handoff", "model_cpu", "gc", "lag", "server", "batch"
    }  # fmt: skip
    assert timing["batch"] == 1  # alone in its batch
    assert timing["model"] > 0 and 0 < timing["model_cpu"] <= timing["model"] + 0.1
    assert all(timing[name] >= 0 for name in ("fetch", "wait", "handoff", "gc", "lag"))
    inside = timing["fetch"] + timing["wait"] + timing["model"] + timing["handoff"]
    assert inside <= timing["server"]
    # The body's timings are measured inside the same span.
    assert response.json()["timings_ms"]["total"] <= timing["server"]


async def test_top_k_and_request_id(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/rank",
        json={"user_id": "u1", "candidates": ["i1", "i11", "i3"], "top_k": 1},
        headers={"X-Request-ID": "req-42"},
    )
    assert response.json()["request_id"] == "req-42"
    assert _ids(response.json()) == ["i3"]


async def test_empty_candidates(client: httpx.AsyncClient) -> None:
    payload = await _rank(client, user_id="u1", candidates=[])
    assert payload["items"] == [] and payload["degraded"] == []


async def test_no_generated_behaviours(client: httpx.AsyncClient) -> None:
    payload = await _rank(client, user_id="u2", candidates=["i1", "i5"])
    assert _ids(payload)[0] == "i5"
    assert payload["degraded"] == ["no_generated_behaviours"]


async def test_unknown_user(client: httpx.AsyncClient) -> None:
    payload = await _rank(client, user_id="stranger", candidates=["i1", "i5"])
    assert payload["degraded"] == ["unknown_user", "no_generated_behaviours"]
    assert {item["score"] for item in payload["items"]} == {0.5}


async def test_recent_events_count_for_an_unknown_user(client: httpx.AsyncClient) -> None:
    events = [{"item_id": "i6", "event": "click", "ts": NOW}]
    payload = await _rank(client, user_id="stranger", candidates=["i1", "i6"], recent_events=events)
    assert _ids(payload) == ["i6", "i1"]
    assert payload["degraded"] == ["no_generated_behaviours"]


async def test_recent_events_are_merged_and_capped(client: httpx.AsyncClient) -> None:
    # newer than the stored sequence and more than the bundle's 6 slots: i12 (-e4) dominates
    events = [{"item_id": "i12", "event": "cart", "ts": NOW + n} for n in range(8)]
    payload = await _rank(
        client, user_id="u1", candidates=["i3", "i4", "i12"], recent_events=events
    )
    assert _ids(payload)[0] == "i12"
    assert payload["degraded"] == []


async def test_unknown_items_and_event_items(client: httpx.AsyncClient) -> None:
    events = [{"item_id": "not-in-catalogue", "event": "purchase", "ts": NOW}]
    payload = await _rank(
        client, user_id="u1", candidates=["i3", "brand-new"], recent_events=events
    )
    assert payload["degraded"] == ["unknown_items", "unknown_event_items"]
    scores = {item["item_id"]: item["score"] for item in payload["items"]}
    assert scores["brand-new"] == 0.5  # the default vector is zeros in the test bundle


async def test_explanations(client: httpx.AsyncClient) -> None:
    payload = await _rank(
        client, user_id="u1", candidates=["i1", "i3", "i4"], top_k=2, explain=True
    )
    explanations = payload["explanations"]
    assert [e["item_id"] for e in explanations] == _ids(payload)
    first = explanations[0]
    assert first["item_id"] == "i3"
    real = [b for b in first["behaviours"] if b["source"] == "real"]
    assert real and real[0]["item_id"] == "i3"
    for explanation in explanations:
        weights = [b["weight"] for b in explanation["behaviours"]]
        assert 1 <= len(weights) <= 3 and weights == sorted(weights, reverse=True)
    i4 = next(e for e in explanations if e["item_id"] == "i4")
    assert i4["behaviours"][0]["source"] == "generated"
    assert i4["behaviours"][0]["item_id"] == "i4"


async def test_full_graph_scores_like_the_split_path(serving: Serving) -> None:
    body = {"user_id": "u1", "candidates": ["i1", "i3", "i4", "i11", "x"]}
    results = []
    for mode in ("split", "full"):
        async with serving(graph_mode=mode) as client:
            results.append((await client.post("/v1/rank", json=body)).json()["items"])
    split, full = results
    assert [i["item_id"] for i in split] == [i["item_id"] for i in full]
    for a, b in zip(split, full, strict=True):
        assert a["score"] == pytest.approx(b["score"], abs=1e-6)
