"""The experiment in ``REASEQ_EXPERIMENT_FILE``: applied at start-up and when it changes to a
higher version; a bad file is logged with its reason and the running experiment kept."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from service.experiments.watch import ExperimentFileWatcher
from service.observability.logs import JsonFormatter
from tests.support.experiments import ServedApp, ServingApp, experiment
from tests.support.logs import captured_logs

pytestmark = pytest.mark.anyio
#: Polls are made by the tests themselves; the watcher's own would come an hour later.
NEVER_S = "3600"
HANG_GUARD_S = 30


def _write(path: Path, body: dict[str, Any] | str) -> None:
    path.write_text(body if isinstance(body, str) else json.dumps(body))


def _watcher(served: ServedApp) -> ExperimentFileWatcher:
    watcher = served.runtime.experiment_watcher
    assert watcher is not None
    return watcher


async def _running_version(served: ServedApp) -> int | None:
    running = (await served.shown())["experiment"]
    return None if running is None else int(running["config"]["version"])


def _warnings(stream: io.StringIO) -> list[str]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line["message"] for line in lines if line["level"] == "warning"]


async def test_the_file_is_applied_at_start_up_and_when_it_changes(
    serving_app: ServingApp, tmp_path: Path
) -> None:
    path = tmp_path / "experiment.json"
    _write(path, experiment(version=1))
    async with serving_app(experiment_file=path, experiment_watch_interval_s=NEVER_S) as served:
        shown = (await served.shown())["experiment"]
        first = (await served.rank("u1")).json()
        ramp = experiment(version=2, arms=(("control", "test-1", 0.2), ("new", "test-2", 0.8)))
        _write(path, ramp)
        await _watcher(served).poll()
        ramped = (await served.shown())["experiment"]
    assert (shown["source"], shown["config"]["version"]) == ("file", 1)
    assert first["experiment"] == "ranker-ab"
    assert ramped["config"]["version"] == 2
    assert [arm["share"] for arm in ramped["arms"]] == [0.2, 0.8]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (experiment(version=2, arms=(("a", "test-1", 0.7), ("b", "test-2", 0.2))), "arms"),
        (experiment(version=2, colour="blue"), "colour"),
        ("{not json", "json"),
        (experiment(version=2, arms=(("a", "test-9", 1.0),)), "test-9"),
        (experiment(version=1, name="other"), "not higher"),
    ],
    ids=["shares", "unknown-field", "not-json", "missing-bundle", "stale-version"],
)
async def test_a_bad_file_is_logged_and_the_running_experiment_kept(
    serving_app: ServingApp, tmp_path: Path, content: dict[str, Any] | str, reason: str
) -> None:
    path = tmp_path / "experiment.json"
    _write(path, experiment(version=1))
    with captured_logs(JsonFormatter()) as stream:
        async with serving_app(experiment_file=path, experiment_watch_interval_s=NEVER_S) as served:
            before = await served.shown()
            _write(path, content)
            await _watcher(served).poll()
            await _watcher(served).poll()
            after = await served.shown()
            answer = (await served.rank("u1")).json()
    assert after == before
    assert answer["experiment"] == "ranker-ab"
    refusals = [m for m in _warnings(stream) if "is not applied" in m]
    assert len(refusals) == 1, refusals
    assert reason in refusals[0].lower()


async def test_a_missing_bundle_is_tried_again_until_it_is_there(
    serving_app: ServingApp, tmp_path: Path, bundle_root: Path
) -> None:
    late = "test-late"
    path = tmp_path / "experiment.json"
    _write(path, experiment(arms=(("control", "test-1", 0.5), ("late", late, 0.5))))
    async with serving_app(experiment_file=path, experiment_watch_interval_s=NEVER_S) as served:
        missing = await _running_version(served)
        shutil.rmtree(bundle_root / late, ignore_errors=True)
        shutil.copytree(bundle_root / "test-2", bundle_root / late)
        manifest = bundle_root / late / "manifest.json"
        manifest.write_text(manifest.read_text().replace('"test-2"', f'"{late}"'))
        await _watcher(served).poll()
        arrived = await _running_version(served)
    assert (missing, arrived) == (None, 1)


async def test_the_watcher_polls_by_itself(serving_app: ServingApp, tmp_path: Path) -> None:
    path = tmp_path / "experiment.json"
    async with serving_app(experiment_file=path, experiment_watch_interval_s="0.01") as served:
        assert await _running_version(served) is None, "no file yet: nothing runs"
        _write(path, experiment(version=3))

        async def applied() -> None:
            while await _running_version(served) != 3:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(applied(), HANG_GUARD_S)


async def test_a_stop_through_the_admin_endpoint_holds_while_the_file_is_unchanged(
    serving_app: ServingApp, tmp_path: Path
) -> None:
    path = tmp_path / "experiment.json"
    _write(path, experiment())
    async with serving_app(experiment_file=path, experiment_watch_interval_s=NEVER_S) as served:
        await served.runtime.experiments.stop()
        await _watcher(served).poll()
        stopped = await _running_version(served)
        _write(path, experiment(version=2))
        await _watcher(served).poll()
        restarted = await _running_version(served)
    assert (stopped, restarted) == (None, 2)
