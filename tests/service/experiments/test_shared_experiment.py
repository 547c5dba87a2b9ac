"""What the admin endpoints change, shared by the workers of one service: two apps over one
``REASEQ_WORKER_STATE_DIR`` stand for two workers (the polls are the tests' own); a real service
with two worker processes answers every connection with the experiment, the bundle and the
events set through one of them."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.experiments.shared import POLL_INTERVAL_S, SharedExperiment
from service.observability.multiprocess import worker_pids
from service.worker_state import EXPERIMENT_FILE
from tests.support.experiments import ADMIN, EXPERIMENT_PATH, ServedApp, ServingApp, experiment
from tests.support.serving import ADMIN_KEY
from tests.support.workers import two_workers, worker_rank_answers

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def _two_apps(
    serving_app: ServingApp, folder: Path
) -> AsyncIterator[tuple[ServedApp, ServedApp]]:
    """Two apps over one folder: two workers of one service, in this process."""
    async with (
        serving_app(worker_state_dir=folder) as first,
        serving_app(worker_state_dir=folder) as second,
    ):
        yield first, second


def _shared(served: ServedApp) -> SharedExperiment:
    shared = served.runtime.shared_experiment
    assert shared is not None
    return shared


async def _version(served: ServedApp) -> int | None:
    running = (await served.shown())["experiment"]
    return None if running is None else int(running["config"]["version"])


async def test_a_change_on_one_worker_reaches_the_other(
    serving_app: ServingApp, tmp_path: Path
) -> None:
    async with _two_apps(serving_app, tmp_path) as (first, second):
        started = await first.start(experiment(version=3))
        assert started.status_code == 200, started.text
        assert await _version(second) is None  # not polled yet
        await _shared(second).poll()
        shown = (await second.shown())["experiment"]
        assert (shown["config"]["version"], shown["source"]) == (3, "admin")
        assert (await second.rank("u1")).json()["experiment"] == "ranker-ab"
        stopped = await second.client.delete(EXPERIMENT_PATH, headers=ADMIN)
        assert stopped.json()["stopped"]["version"] == 3
        assert await _version(first) == 3
        await _shared(first).poll()
        assert await _version(first) is None
        assert (await first.rank("u1")).json()["experiment"] is None


async def test_a_worker_that_starts_later_starts_with_the_experiment(
    serving_app: ServingApp, tmp_path: Path
) -> None:
    async with serving_app(worker_state_dir=tmp_path) as first:
        assert (await first.start(experiment(version=2))).status_code == 200
        async with serving_app(worker_state_dir=tmp_path) as restarted:
            assert await _version(restarted) == 2


async def test_changes_are_made_in_turn_so_an_older_version_is_refused_everywhere(
    serving_app: ServingApp, tmp_path: Path
) -> None:
    async with _two_apps(serving_app, tmp_path) as (first, second):
        assert (await first.start(experiment(version=5))).status_code == 200
        # The second worker has not polled: its change first takes the first one's.
        older = await second.start(experiment(version=4))
        assert older.status_code == 409, older.text
        assert older.json()["code"] == "stale_experiment_version"
        assert await _version(second) == 5
        await _shared(first).poll()
        assert await _version(first) == 5


async def test_a_refused_change_is_not_passed_on(serving_app: ServingApp, tmp_path: Path) -> None:
    async with serving_app(worker_state_dir=tmp_path) as first:
        missing = experiment(arms=(("control", "test-1", 0.5), ("new", "no-such-version", 0.5)))
        assert (await first.start(missing)).status_code == 404
        assert not (tmp_path / EXPERIMENT_FILE).exists()
        async with serving_app(worker_state_dir=tmp_path) as second:
            assert await _version(second) is None


def test_two_worker_processes_share_what_the_admin_endpoints_change(
    bundle_root: Path, users_snapshot: Path, tmp_path: Path
) -> None:
    """On the embedded store: a bundle activation, appended events and the experiment, each made
    through one worker, are what every worker answers with."""
    admin = {
        "REASEQ_ADMIN_API_KEY": ADMIN_KEY,
        "REASEQ_BUNDLE_WATCH_INTERVAL_S": "0.2",
        "REASEQ_PREDICTION_LOG_DIR": str(tmp_path / "predictions"),
    }
    with two_workers(bundle_root, users_snapshot, tmp_path, **admin) as (url, metrics_dir):
        activated = httpx.post(
            f"{url}/v1/admin/bundle/activate", json={"version": "test-2"}, headers=ADMIN
        )
        assert activated.status_code == 200, activated.text
        time.sleep(1.0)  # five polls of the bundle version
        # Appended after both workers serve the new bundle: the other worker's store reads
        # the event from the journal when it fetches, not when it opens.
        event = {"item_id": "i3", "event": "click", "ts": 1_700_000_000, "event_id": "e-1"}
        appended = _admin_post(url, "/v1/admin/users/u-new/events", {"events": [event]})
        assert appended["appended"] == 1
        before = _answers_per_worker(metrics_dir, tmp_path)
        ranked = _rank_on_both_workers(url, metrics_dir, tmp_path, before)
        started = _admin_put(url, EXPERIMENT_PATH, experiment(version=7))
        assert started.status_code == 200, started.text
        time.sleep(4 * POLL_INTERVAL_S)
        between = _answers_per_worker(metrics_dir, tmp_path)
        in_experiment = _rank_on_both_workers(url, metrics_dir, tmp_path, between)
    assert {answer["bundle_version"] for answer in ranked} == {"test-2"}
    # The user exists only through the event appended through one worker.
    assert not [answer for answer in ranked if "unknown_user" in answer["degraded"]]
    assert {answer["experiment"] for answer in in_experiment} == {"ranker-ab"}


def _rank_on_both_workers(
    url: str, metrics_dir: Path, scratch: Path, before: list[float]
) -> list[dict[str, Any]]:
    """Rank requests on new connections until each worker has answered some since ``before``
    (the kernel hands connections to the workers as it likes)."""
    answers: list[dict[str, Any]] = []
    while len(answers) < 400:
        answers += [_rank(url) for _ in range(20)]
        now = _answers_per_worker(metrics_dir, scratch)
        if all(after > was for after, was in zip(now, before, strict=True)):
            return answers
    raise AssertionError(f"one worker answered none of {len(answers)} requests")


def _answers_per_worker(metrics_dir: Path, scratch: Path) -> list[float]:
    return [
        worker_rank_answers(metrics_dir, pid, scratch) for pid in sorted(worker_pids(metrics_dir))
    ]


def _rank(url: str) -> dict[str, Any]:
    # A fresh connection each time, so the kernel may hand it to either worker.
    ranked = httpx.post(
        f"{url}/v1/rank",
        json={"user_id": "u-new", "candidates": ["i1", "i3"]},
        headers={"Connection": "close"},
    )
    assert ranked.status_code == 200, ranked.text
    return dict(ranked.json())


def _admin_post(url: str, path: str, body: dict[str, object]) -> dict[str, int]:
    answer = httpx.post(f"{url}{path}", json=body, headers=ADMIN | {"Connection": "close"})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _admin_put(url: str, path: str, body: dict[str, object]) -> httpx.Response:
    return httpx.put(f"{url}{path}", json=body, headers=ADMIN | {"Connection": "close"})
