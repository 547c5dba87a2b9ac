"""The real server with the demo bundle's exported graphs: concurrent requests, micro-batched,
get exactly the scores they get alone, and a user's repeated requests hit the per-user cache."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tests.support.reaseq import DemoBuild, RunningService, embedded_env


def _scores(body: dict) -> dict[str, float]:
    return {item["item_id"]: item["score"] for item in body["items"]}


def _metric(text: str, name: str, **labels: str) -> float:
    selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{name}{{{selector}}} (\S+)$" if labels else rf"^{name} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"{name} {labels} not exposed"
    return float(found.group(1))


def test_concurrent_requests_score_as_they_do_alone(
    demo_build: DemoBuild, start_service: Callable[[dict[str, str]], RunningService]
) -> None:
    rng = np.random.default_rng(0)
    # Each user's recent events are the same in every body, so its behaviours repeat.
    recent = {
        user: [
            {"item_id": f"i{int(i)}", "event": "click", "ts": 1_760_000_000 + int(i)}
            for i in rng.choice(np.arange(1, 2000), user % 4, replace=False)
        ]
        for user in range(1, 8)
    }
    bodies = []
    for n in range(24):
        user = n % 7 + 1
        items = rng.choice(np.arange(1, 2000), int(rng.integers(1, 400)), replace=False)
        bodies.append(
            {
                "user_id": f"u{user}",
                "candidates": [f"i{int(i)}" for i in items],
                "recent_events": recent[user],
            }
        )
    # Eight requests at once, every one admitted (the default admits a few per scoring thread),
    # all in one worker: its event loop takes the next requests while the scoring thread works
    # on the first, so they meet in a batch. Spread over a worker per core, each worker may
    # finish a small request before the next reaches it, and no batch is shared.
    env = embedded_env(demo_build) | {
        "REASEQ_WORKERS": "1",
        "REASEQ_BATCH_MAX_WAIT_MS": "2",
        "REASEQ_RANK_MAX_IN_FLIGHT": "8",
    }
    service = start_service(env)
    with service.client() as client:
        alone = [client.post("/v1/rank", json=body).json() for body in bodies]

        def post(body: dict) -> dict:
            with service.client() as own:
                response = own.post("/v1/rank", json=body)
                assert response.status_code == 200, response.text
                return response.json()  # type: ignore[no-any-return]

        with ThreadPoolExecutor(8) as pool:
            together = list(pool.map(post, bodies * 2))
        metrics = client.get("/metrics").text
    for single, batched in zip(alone * 2, together, strict=True):
        expected, got = _scores(single), _scores(batched)
        assert expected.keys() == got.keys()
        np.testing.assert_allclose(
            [got[i] for i in expected], list(expected.values()), rtol=1e-5, atol=1e-7
        )
    batches = _metric(metrics, "reaseq_batch_size_count")
    requests = _metric(metrics, "reaseq_batch_size_sum")
    assert requests == 3 * len(bodies)
    assert batches < requests, "concurrent requests should have shared batches"
    # Every user was seen before the concurrent rounds: its encoded behaviours were cached.
    assert _metric(metrics, "reaseq_user_cache_lookups_total", result="hit") >= len(bodies)
