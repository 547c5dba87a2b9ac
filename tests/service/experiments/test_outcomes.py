"""POST /v1/outcomes through the real ASGI app, over each store: outcomes land in the prediction
log (files with the embedded store, the Redis stream with Redis), bad ones are refused by the
schema, an off log answers 409 and a missing key 401."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from service.experiments.records import LOG_FILE_GLOB, PREDICTION_STREAM, STREAM_FIELD
from service.stores.config import EmbeddedStoreConfig, RedisStoreConfig
from tests.support.serving import Serving

pytestmark = pytest.mark.anyio

NOW = 1_764_000_000


def _outcome(request_id: Any = "req-1", item_id: Any = "i3", **more: Any) -> dict[str, Any]:
    return {"request_id": request_id, "item_id": item_id, "outcome": "click", **more}


def _logged(folder: Path, store_config: EmbeddedStoreConfig | RedisStoreConfig) -> list[Any]:
    if isinstance(store_config, RedisStoreConfig):
        if store_config.cluster:
            client: Any = redis.RedisCluster.from_url(store_config.url)
        else:
            client = redis.Redis.from_url(store_config.url)
        with client:
            entries = client.xrange(PREDICTION_STREAM)
        return [orjson.loads(fields[STREAM_FIELD.encode()]) for _, fields in entries]
    return [
        orjson.loads(line)
        for path in sorted(folder.glob(LOG_FILE_GLOB))
        for line in path.read_bytes().splitlines()
    ]


def _store_settings(store_config: EmbeddedStoreConfig | RedisStoreConfig) -> dict[str, Any]:
    if isinstance(store_config, RedisStoreConfig):
        return {"store": "redis", "redis_url": store_config.url}
    return {"store": "embedded"}


async def test_outcomes_are_accepted_and_logged(
    serving: Serving, store_config: EmbeddedStoreConfig | RedisStoreConfig, tmp_path: Path
) -> None:
    sent = [
        _outcome(),
        _outcome(outcome="order", ts=NOW, user_id="u1"),
        _outcome("req-2", "i9", user_id=None),
    ]
    async with serving(prediction_log_dir=tmp_path, **_store_settings(store_config)) as client:
        response = await client.post("/v1/outcomes", json={"outcomes": sent})
        assert response.status_code == 202, response.text
        assert response.json() == {"accepted": 3, "dropped": 0}
        scrape = (await client.get("/metrics")).text
    logged = _logged(tmp_path, store_config)
    assert [(r["request_id"], r["item_id"], r["outcome"]) for r in logged] == [
        ("req-1", "i3", "click"),
        ("req-1", "i3", "order"),
        ("req-2", "i9", "click"),
    ]
    assert all(r["kind"] == "outcome" and r["format"] == 1 for r in logged)
    assert logged[1]["ts"] == NOW and logged[1]["user_id"] == "u1"
    assert logged[0]["ts"] > NOW and logged[0]["user_id"] is None  # arrival time
    for family in ("records_total", "dropped_total", "write_errors_total", "queue_depth"):
        assert f"reaseq_prediction_log_{family}" in scrape


async def test_outcomes_are_logged_in_experiment_mode_with_no_experiment(
    serving: Serving, tmp_path: Path
) -> None:
    async with serving(prediction_log="experiment", prediction_log_dir=tmp_path) as client:
        response = await client.post("/v1/outcomes", json={"outcomes": [_outcome()]})
    assert response.status_code == 202
    assert len(_logged(tmp_path, EmbeddedStoreConfig())) == 1


async def test_a_full_queue_is_reported_as_dropped(serving: Serving, tmp_path: Path) -> None:
    sent = [_outcome(f"req-{n}") for n in range(500)]
    async with serving(prediction_log_dir=tmp_path, prediction_log_queue=1) as client:
        response = await client.post("/v1/outcomes", json={"outcomes": sent})
        assert response.status_code == 202
        body = response.json()
        scrape = (await client.get("/metrics")).text
    assert body["accepted"] + body["dropped"] == len(sent)
    assert len(_logged(tmp_path, EmbeddedStoreConfig())) == body["accepted"]
    assert f"reaseq_prediction_log_dropped_total {float(body['dropped'])}" in scrape


@pytest.mark.parametrize(
    "outcome",
    [
        _outcome(outcome="view"),
        _outcome(outcome="Click"),
        _outcome(request_id=""),
        _outcome(request_id="has space"),
        _outcome(request_id="r" * 129),
        _outcome(item_id=""),
        _outcome(item_id="bad\x1fid"),
        _outcome(item_id=7),
        _outcome(user_id="x" * 257),
        _outcome(ts="1764000000"),
        _outcome(ts=1.5),
        _outcome(ts=True),
        _outcome(ts=-1),
        _outcome(ts=NOW * 1000),
        _outcome(extra="field"),
        {"request_id": "req-1", "item_id": "i1"},
    ],
)
async def test_bad_outcomes_are_refused_by_the_schema(
    serving: Serving, tmp_path: Path, outcome: dict[str, Any]
) -> None:
    async with serving(prediction_log_dir=tmp_path) as client:
        response = await client.post("/v1/outcomes", json={"outcomes": [_outcome(), outcome]})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "schema_violation"
    assert _logged(tmp_path, EmbeddedStoreConfig()) == [], "nothing of a refused batch is logged"


@pytest.mark.parametrize("body", [{"outcomes": []}, {}, {"outcomes": [_outcome()] * 10_001}])
async def test_a_batch_holds_one_to_ten_thousand_outcomes(
    serving: Serving, tmp_path: Path, body: dict[str, Any]
) -> None:
    async with serving(prediction_log_dir=tmp_path, max_body_bytes=4 * 2**20) as client:
        response = await client.post("/v1/outcomes", json=body)
    assert response.status_code == 422, response.text


async def test_ids_outside_the_deployments_pattern_are_refused(
    serving: Serving, tmp_path: Path
) -> None:
    async with serving(prediction_log_dir=tmp_path, id_pattern=r"[a-z0-9]+") as client:
        response = await client.post("/v1/outcomes", json={"outcomes": [_outcome(item_id="I-3")]})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_id"


async def test_an_off_log_answers_409_naming_the_setting(serving: Serving) -> None:
    async with serving(prediction_log="off") as client:
        response = await client.post("/v1/outcomes", json={"outcomes": [_outcome()]})
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "prediction_log_off"
    assert "REASEQ_PREDICTION_LOG" in body["detail"]


async def test_the_rank_api_key_is_required_where_keys_are_set(
    serving: Serving, tmp_path: Path
) -> None:
    body = {"outcomes": [_outcome()]}
    async with serving(prediction_log_dir=tmp_path, api_keys="rank-key") as client:
        missing = await client.post("/v1/outcomes", json=body)
        wrong = await client.post("/v1/outcomes", json=body, headers={"X-API-Key": "other"})
        right = await client.post("/v1/outcomes", json=body, headers={"X-API-Key": "rank-key"})
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 202)
    assert missing.json()["code"] == "unauthorized"
    assert missing.headers["WWW-Authenticate"] == "ApiKey"
    assert len(_logged(tmp_path, EmbeddedStoreConfig())) == 1


async def test_a_body_over_the_limit_is_413(serving: Serving, tmp_path: Path) -> None:
    sent = [_outcome(f"req-{n}", "i" * 200) for n in range(5000)]
    async with serving(prediction_log_dir=tmp_path) as client:
        response = await client.post("/v1/outcomes", json={"outcomes": sent})
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
