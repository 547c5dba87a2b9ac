"""The Ray Serve peer: its request rows and padded batches, its scores against the service's on a
tiny bundle (without Ray), and the real peer, started, against ``reaseq serve`` (slow)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest

from bench.ray_peer import (
    BEST_SETTINGS,
    SEARCH_GRID,
    RayPeerSettings,
    ray_peer_command,
)
from bench.ray_peer.ranker import FullGraphRanker, full_graph_feeds, top_items
from loadtest.service_process import serving_process
from service.app import create_app
from service.bundles.loaded import LoadedBundle
from service.contracts import graphs
from service.contracts.features import time_gap_buckets
from service.settings import Settings
from tests.support.bundles import SmallBundle, build_bundle
from tests.support.ports import free_port
from tests.support.reaseq import RunningService
from tests.support.users import NOW, demo_users, write_embedded

#: Users and candidates the parity runs over: history and generated behaviours, history alone,
#: an empty history, an unknown user; unknown items among the candidates.
REQUESTS = [
    ("u1", [f"i{n}" for n in range(16)]),
    ("u2", ["i5", "i13", "i2", "nope"]),
    ("u_empty", ["i1", "i9"]),
    ("stranger", ["i3", "missing", "i11"]),
]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> SmallBundle:
    root = tmp_path_factory.mktemp("ray_peer")
    bundle_dir = build_bundle(root / "bundles", max_sequence=2)
    users = write_embedded(root / "users.npz", demo_users(LoadedBundle.load(bundle_dir)))
    return SmallBundle(root / "bundles", users)


@pytest.fixture(scope="module")
def ranker(small: SmallBundle) -> FullGraphRanker:
    return FullGraphRanker(small.bundles / "test-1", small.users)


def test_the_command_takes_the_settings_and_leaves_the_port_to_the_caller() -> None:
    settings = RayPeerSettings(max_batch_size=8, batch_wait_ms=2.5, replicas=2)
    command, env = ray_peer_command(Path("b"), Path("u.npz"), settings)
    assert command[1:3] == ["-m", "bench.ray_peer"]
    assert "--port" not in command
    flags = dict(zip(command[3::2], command[4::2], strict=True))
    assert flags == {
        "--bundle-dir": "b",
        "--users": "u.npz",
        "--max-batch-size": "8",
        "--batch-wait-ms": "2.5",
        "--replicas": "2",
    }
    assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    assert BEST_SETTINGS in SEARCH_GRID


def test_a_request_becomes_the_newest_behaviours_with_the_shared_features(
    ranker: FullGraphRanker,
) -> None:
    inputs = ranker.inputs("u1", ["i2", "unknown"], now=NOW)
    table = ranker.items
    # u1 did i3, i3, i2 (oldest first); the bundle keeps the newest two.
    np.testing.assert_array_equal(inputs.sequence, table.lookup(["i3", "i2"])[0])
    np.testing.assert_array_equal(inputs.events, [2, 1])
    np.testing.assert_array_equal(
        inputs.gaps, time_gap_buckets(NOW, np.asarray([NOW - 2000, NOW - 1000]))
    )
    np.testing.assert_array_equal(inputs.sequence_mask, [1.0, 1.0])
    np.testing.assert_array_equal(inputs.generated, table.lookup(["i4", "i6"])[0])
    np.testing.assert_array_equal(inputs.candidates[1], table.default_vector)
    nobody = ranker.inputs("stranger", ["i1"], now=NOW)
    assert nobody.sequence.shape == (1, table.dim) and nobody.sequence_mask.tolist() == [0.0]
    assert nobody.generated_mask.tolist() == [0.0]


def test_a_batch_is_padded_to_its_longest_request(ranker: FullGraphRanker) -> None:
    batch = [ranker.inputs(user, candidates, NOW) for user, candidates in REQUESTS]
    feeds = full_graph_feeds(batch)
    assert feeds[graphs.CANDIDATE_VECTORS].shape == (4, 16, ranker.items.dim)
    assert feeds[graphs.SEQUENCE_MASK].tolist()[1] == [1.0, 0.0]  # u2 did one thing
    assert feeds[graphs.GENERATED_MASK].tolist() == [[1, 1], [0, 0], [0, 0], [0, 0]]
    scores = ranker.score_batch(batch)
    assert [len(s) for s in scores] == [len(c) for _, c in REQUESTS]
    for request, batched in zip(batch, scores, strict=True):
        np.testing.assert_allclose(ranker.score_batch([request])[0], batched, atol=1e-6)


def test_top_items_are_best_first_cut_to_top_k() -> None:
    scores = np.asarray([0.1, 0.7, 0.7, 0.3], np.float32)
    ranked = top_items(["a", "b", "c", "d"], scores, 3)
    assert [r["item_id"] for r in ranked] == ["b", "c", "d"]
    assert len(top_items(["a", "b", "c", "d"], scores, None)) == 4


@pytest.mark.anyio
async def test_the_peer_scores_as_the_service_does(
    small: SmallBundle, ranker: FullGraphRanker
) -> None:
    settings = Settings(
        bundle_root=small.bundles, embedded_users_path=small.users, store="embedded"
    )
    app = create_app(settings)
    batch = [ranker.inputs(user, candidates, NOW) for user, candidates in REQUESTS]
    peer = ranker.score_batch(batch)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rank") as client:
            for (user, candidates), scores in zip(REQUESTS, peer, strict=True):
                body = {"user_id": user, "candidates": candidates, "as_of": NOW}
                answer = await client.post("/v1/rank", json=body)
                assert answer.status_code == 200, answer.text
                served = {i["item_id"]: i["score"] for i in answer.json()["items"]}
                expected = {item: float(s) for item, s in zip(candidates, scores, strict=True)}
                assert served.keys() == expected.keys()
                for item, score in served.items():
                    assert score == pytest.approx(expected[item], abs=1e-5), (user, item)


@pytest.fixture
def peer(small: SmallBundle, tmp_path: Path) -> Iterator[tuple[str, int]]:
    pytest.importorskip("ray.serve")  # the [peer] extra; core Ray alone comes with [scale]
    settings = RayPeerSettings(max_batch_size=4, batch_wait_ms=2.0, replicas=1)
    command, env = ray_peer_command(small.bundles / "test-1", small.users, settings)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "ray_peer.log"
    with serving_process([*command, "--port", str(port)], env, log, url, 300, 20) as process:
        yield url, process.pid


@pytest.mark.slow
def test_the_real_peer_answers_like_the_service_and_leaves_no_process(
    peer: tuple[str, int],
    small: SmallBundle,
    start_service: Callable[[dict[str, str]], RunningService],
) -> None:
    url, pid = peer
    tree = psutil.Process(pid).children(recursive=True)
    assert {"raylet", "gcs_server", "haproxy"} <= {p.name() for p in tree}
    service = start_service(small.service_env())
    with httpx.Client(timeout=30) as client:
        for user, candidates in REQUESTS:
            body = {"user_id": user, "candidates": candidates}
            ours = client.post(f"{service.url}/v1/rank", json=body).json()["items"]
            theirs = client.post(f"{url}/v1/rank", json=body).json()["items"]
            expected = {i["item_id"]: i["score"] for i in ours}
            assert {i["item_id"]: pytest.approx(i["score"], abs=1e-5) for i in theirs} == expected
            scores = [i["score"] for i in theirs]
            assert scores == sorted(scores, reverse=True)
    psutil.Process(pid).terminate()
    psutil.Process(pid).wait(20)
    _, alive = psutil.wait_procs(tree, timeout=5)
    assert not alive
