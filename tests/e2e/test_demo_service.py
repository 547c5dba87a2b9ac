"""The demo end to end: ``reaseq demo`` builds a bundle, ``reaseq serve`` serves it, and
``/v1/rank`` answers over real HTTP, from the embedded store and from a real Redis."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from offline.data.canonical import Dataset
from offline.gbr import GBRModel
from service.contracts import keys
from service.contracts.manifest import read_manifest, verify_files
from service.stores.snapshot import UserSnapshot
from tests.support.reaseq import DemoBuild, RunningService, run_reaseq

CANDIDATES = [f"i{n}" for n in range(1, 501)]


def embedded_env(build: DemoBuild) -> dict[str, str]:
    return {
        "REASEQ_BUNDLE_ROOT": str(build.bundles),
        "REASEQ_EMBEDDED_USERS_PATH": str(build.var / "users.npz"),
        "REASEQ_STORE": "embedded",
    }


def test_demo_writes_a_verified_bundle_with_its_evaluation(demo_build: DemoBuild) -> None:
    bundle_dir = demo_build.bundles / demo_build.version
    manifest = read_manifest(bundle_dir)
    verify_files(bundle_dir, manifest)
    assert set(manifest.graphs) == {"user_encoder", "candidate_encoder", "scorer", "full"}
    assert {"model", "id_only", "random"} <= set(manifest.metrics)
    assert manifest.metrics["model"].auc > manifest.metrics["random"].auc
    assert (demo_build.var / "users.npz").is_file()


def test_demo_bundle_attends_over_generated_behaviours(demo_build: DemoBuild) -> None:
    manifest = read_manifest(demo_build.bundles / demo_build.version)
    assert manifest.max_lengths.generated == 16
    assert manifest.generator is not None
    gbr = GBRModel.load(demo_build.var / "gbr")
    assert manifest.generator.version == gbr.version
    assert (
        gbr.until_ts is not None and gbr.until_ts <= Dataset.load(demo_build.var / "data").split_ts
    )
    assert {"full", "full/cold_items", "full/sparse_users"} <= set(manifest.metrics)
    snapshot = UserSnapshot.load(demo_build.var / "users.npz")
    block = snapshot.generated("u1")
    assert block is not None and block.gbr_version == gbr.version
    assert 0 < len(block) <= manifest.max_lengths.generated
    sequence = snapshot.sequence("u1")
    assert sequence is not None and not set(block.item_ids) & set(sequence.item_ids)


def test_rank_500_candidates_over_http(
    demo_build: DemoBuild, start_service: Callable[[dict[str, str]], RunningService]
) -> None:
    service = start_service(embedded_env(demo_build))
    with service.client() as client:
        response = client.post("/v1/rank", json={"user_id": "u1", "candidates": CANDIDATES})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["bundle_version"] == demo_build.version
        assert sorted(item["item_id"] for item in body["items"]) == sorted(CANDIDATES)
        scores = [item["score"] for item in body["items"]]
        assert scores == sorted(scores, reverse=True)
        assert all(0.0 < score < 1.0 for score in scores)
        assert len(set(scores)) > 100, "scores must depend on the candidate"
        assert body["degraded"] == []
        assert {"fetch", "model", "total"} <= set(body["timings_ms"])

        other = client.post("/v1/rank", json={"user_id": "u2", "candidates": CANDIDATES}).json()
        assert [i["item_id"] for i in other["items"]] != [i["item_id"] for i in body["items"]]

        bad = client.post("/v1/rank", json={"user_id": "u1", "candidates": ["i1", "i1"]})
        assert bad.status_code == 422
        assert "i1" in bad.text

        assert client.get("/v1/bundle").json()["version"] == demo_build.version
        metrics = client.get("/metrics").text
        assert "reaseq_requests_total" in metrics
        assert "reaseq_request_duration_seconds_bucket" in metrics


def test_unknown_user_and_items_are_degraded_not_errors(
    demo_build: DemoBuild, start_service: Callable[[dict[str, str]], RunningService]
) -> None:
    service = start_service(embedded_env(demo_build))
    with service.client() as client:
        body = client.post(
            "/v1/rank",
            json={"user_id": "nobody", "candidates": ["i1", "i2", "not-an-item"], "top_k": 2},
        ).json()
    # The demo bundle expects generated behaviours: an unknown user has none either.
    assert body["degraded"] == ["unknown_user", "unknown_items", "no_generated_behaviours"]
    assert len(body["items"]) == 2


@pytest.mark.usefixtures("redis_server")
def test_redis_store_ranks_like_the_embedded_store(
    demo_build: DemoBuild,
    redis_server: str,
    start_service: Callable[[dict[str, str]], RunningService],
) -> None:
    redis.Redis.from_url(redis_server).flushdb()
    run_reaseq(
        "publish", "--store", "redis", "--redis-url", redis_server,
        "--data", str(demo_build.var / "data"), "--bundles", str(demo_build.bundles),
    )  # fmt: skip
    run_reaseq(
        "gbr", "generate", "--store", "redis", "--redis-url", redis_server,
        "--data", str(demo_build.var / "data"), "--checkpoint", str(demo_build.var / "gbr"),
        "--bundles", str(demo_build.bundles), "--state", str(demo_build.var / "redis_state.npz"),
    )  # fmt: skip
    client = redis.Redis.from_url(redis_server)
    assert client.get(keys.ACTIVE_BUNDLE) == demo_build.version.encode()
    assert client.exists(keys.item_vector_key(demo_build.version, "i1"))

    request = {"user_id": "u3", "candidates": CANDIDATES[:100]}
    embedded = start_service(embedded_env(demo_build))
    from_redis = start_service(
        embedded_env(demo_build) | {"REASEQ_STORE": "redis", "REASEQ_REDIS_URL": redis_server}
    )
    with embedded.client() as a, from_redis.client() as b:
        expected = a.post("/v1/rank", json=request).json()
        actual = b.post("/v1/rank", json=request).json()
    assert actual["degraded"] == expected["degraded"] == []
    assert [i["item_id"] for i in actual["items"]] == [i["item_id"] for i in expected["items"]]
    for x, y in zip(actual["items"], expected["items"], strict=True):
        assert abs(x["score"] - y["score"]) < 1e-5
