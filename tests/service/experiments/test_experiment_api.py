"""The experiment admin endpoints and the answers of a running experiment, on the app with two
real bundles under one bundle root."""

from __future__ import annotations

import io
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from service.experiments.assignment import ArmAssignment
from service.experiments.config import ExperimentConfig
from service.observability.logs import JsonFormatter
from tests.support.experiments import (
    ADMIN,
    EXPERIMENT_METRICS,
    EXPERIMENT_PATH,
    ServingApp,
    experiment,
    prediction_records,
)
from tests.support.exposition import value
from tests.support.logs import captured_logs

pytestmark = pytest.mark.anyio
USERS = [f"user-{n}" for n in range(60)]
ARM_BUNDLES = {"control": "test-1", "new": "test-2"}


async def test_without_an_experiment_the_served_bundle_answers(serving_app: ServingApp) -> None:
    async with serving_app() as served:
        assert await served.shown() == {"experiment": None}
        answer = await served.rank("u1")
        refused = await served.rank("u1", arm="control")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["bundle_version"], body["experiment"], body["arm"]) == ("test-1", None, None)
    assert refused.status_code == 422
    assert refused.json()["code"] == "no_experiment"


async def test_a_50_50_experiment_splits_users_as_the_assignment_says(
    serving_app: ServingApp, prediction_dir: Path
) -> None:
    body = experiment()
    expected = ArmAssignment(ExperimentConfig.model_validate(body))
    async with serving_app() as served:
        started = await served.start(body)
        assert started.status_code == 200, started.text
        answers = [(await served.rank(user)).json() for user in USERS]
        metrics = (await served.client.get("/metrics")).text
    arms = Counter(answer["arm"] for answer in answers)
    assert set(arms) == {"control", "new"}, "60 users all landed in one arm"
    for user, answer in zip(USERS, answers, strict=True):
        assert answer["experiment"] == "ranker-ab"
        assert answer["arm"] == expected.by_hash(user)
        assert answer["bundle_version"] == ARM_BUNDLES[answer["arm"]]
    for arm, count in arms.items():
        labels = {"experiment": "ranker-ab", "arm": arm}
        assert value(metrics, "reaseq_arm_requests_total", **labels) == count
        assert value(metrics, "reaseq_arm_request_duration_seconds_count", **labels) == count
        assert value(metrics, "reaseq_arm_score_count", **labels) == 4 * count
        assert value(metrics, "reaseq_arm_score_bucket", **labels, le="+Inf") == 4 * count
        assert value(metrics, "reaseq_experiment_bundle_memory_bytes", **labels) >= 0
    records = prediction_records(prediction_dir)
    assert len(records) == len(USERS), "one record per answer"
    by_request = {record["request_id"]: record for record in records}
    for answer in answers:
        record = by_request[answer["request_id"]]
        assert record["kind"] == "prediction"
        assert (record["experiment"], record["experiment_version"]) == ("ranker-ab", 1)
        assert (record["arm"], record["shadow"]) == (answer["arm"], False)
        assert record["bundle_version"] == answer["bundle_version"]
        assert record["items"] == [item["item_id"] for item in answer["items"]]
        assert record["scores"] == [item["score"] for item in answer["items"]]
        assert record["candidates"] == 4


async def test_the_running_experiment_is_shown_with_its_bundles(serving_app: ServingApp) -> None:
    body = experiment(arms=(("control", "test-1", 0.9), ("new", "test-2", 0.1)))
    async with serving_app() as served:
        started = (await served.start(body)).json()
        shown = await served.shown()
    assert started == shown
    running = shown["experiment"]
    assert running["config"] == body | {
        "salt": "ranker-ab",
        "unit": "user_id",
        "override_context_key": None,
        "shadows": [],
    }
    assert running["source"] == "admin"
    assert [(a["name"], a["bundle_version"], a["share"]) for a in running["arms"]] == [
        ("control", "test-1", 0.9),
        ("new", "test-2", 0.1),
    ]
    for arm in running["arms"]:
        assert arm["memory"]["disk_bytes"] > 0
        assert arm["memory"]["resident_bytes"] >= 0
        assert arm["loaded_at"]


async def test_arms_of_one_version_share_one_loaded_bundle(serving_app: ServingApp) -> None:
    body = experiment(arms=(("a", "test-2", 0.5), ("b", "test-2", 0.5)))
    async with serving_app() as served:
        assert (await served.start(body)).status_code == 200
        running = served.runtime.experiments.running
        assert running is not None
        assert list(running.bundles) == ["test-2"]
        assert running.arms["a"].bundle is running.arms["b"].bundle


async def test_overrides_by_field_and_by_context_key(serving_app: ServingApp) -> None:
    body = experiment(override_context_key="qa_arm")
    async with serving_app() as served:
        await served.start(body)
        by_field = [(await served.rank(u, arm="new")).json()["arm"] for u in USERS[:10]]
        by_context = [
            (await served.rank(u, context={"qa_arm": "control"})).json()["arm"] for u in USERS[:10]
        ]
        unknown = await served.rank("u1", arm="treatment")
        wrong_type = await served.rank("u1", arm=1)
    assert by_field == ["new"] * 10
    assert by_context == ["control"] * 10
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "unknown_arm"
    assert "control, new" in unknown.json()["detail"]
    assert wrong_type.status_code == 422
    assert wrong_type.json()["code"] == "schema_violation"


async def test_a_context_unit_assigns_sessions(serving_app: ServingApp) -> None:
    body = experiment(unit="context:session")
    expected = ArmAssignment(ExperimentConfig.model_validate(body))
    sessions = [f"session-{n}" for n in range(20)]
    async with serving_app() as served:
        await served.start(body)
        arms = [
            (await served.rank("one-user", context={"session": s})).json()["arm"] for s in sessions
        ]
    assert arms == [expected.by_hash(s) for s in sessions]


BAD_CONFIGS = [
    ({"arms": [{"name": "a", "bundle": "test-1", "share": 0.6}]}, "arms"),
    (
        {
            "arms": [
                {"name": "a", "bundle": "test-1", "share": 0.5},
                {"name": "a", "bundle": "test-2", "share": 0.5},
            ]
        },
        "arms",
    ),
    ({"shadows": [{"name": "control", "bundle": "test-2"}]}, "shadows"),
    ({"version": 0}, "version"),
    ({"version": "2"}, "version"),
    ({"arms": []}, "arms"),
    ({"unit": "session"}, "unit"),
    ({"name": "has space"}, "name"),
    ({"colour": "blue"}, "colour"),
    ({"arms": [{"name": "a", "bundle": "../escape", "share": 1.0}]}, "bundle"),
    ({"arms": [{"name": "a", "bundle": "test-1", "share": 0}]}, "share"),
]


async def test_nothing_changes_after_a_refused_configuration(serving_app: ServingApp) -> None:
    async with serving_app() as served:
        assert (await served.start(experiment())).status_code == 200
        before = await served.shown()
        arm_of_u1 = (await served.rank("u1")).json()["arm"]
        for change, field in BAD_CONFIGS:
            answer = await served.start(experiment(version=5) | change)
            assert answer.status_code == 422, change
            assert answer.json()["code"] == "schema_violation"
            named = {str(part) for error in answer.json()["detail"] for part in error["loc"]}
            assert field in named, (change, answer.json())
        missing = await served.start(
            experiment(version=5, arms=(("a", "test-1", 0.5), ("b", "test-9", 0.5)))
        )
        stale = await served.start(experiment(version=1, name="again"))
        assert await served.shown() == before
        assert (await served.rank("u1")).json()["arm"] == arm_of_u1
    assert missing.status_code == 404
    assert missing.json()["code"] == "bundle_not_found"
    assert "test-9" in missing.json()["detail"]
    assert stale.status_code == 409
    assert stale.json()["code"] == "stale_experiment_version"
    assert "version 1" in stale.json()["detail"]


@pytest.fixture(scope="module")
def flipped_bundle(bundle_root: Path) -> str:
    """A copy of ``test-2`` with a flipped byte in its item table: its checksum fails."""
    version = "test-flipped"
    folder = bundle_root / version
    if not folder.exists():
        shutil.copytree(bundle_root / "test-2", folder)
        manifest = folder / "manifest.json"
        manifest.write_text(manifest.read_text().replace('"test-2"', f'"{version}"'))
        vectors = folder / "item_vectors.npy"
        raw = bytearray(vectors.read_bytes())
        raw[-1] ^= 0xFF
        vectors.write_bytes(bytes(raw))
    return version


async def test_a_corrupt_bundle_is_refused_and_nothing_changes(
    serving_app: ServingApp, flipped_bundle: str
) -> None:
    arms = (("a", "test-2", 0.5), ("b", flipped_bundle, 0.5))
    async with serving_app() as served:
        answer = await served.start(experiment(arms=arms))
        shown = await served.shown()
        plain = (await served.rank("u1")).json()
    assert answer.status_code == 409
    assert answer.json()["code"] == "bundle_corrupt"
    assert shown == {"experiment": None}
    assert (plain["bundle_version"], plain["arm"]) == ("test-1", None)


async def test_replacing_and_stopping(serving_app: ServingApp) -> None:
    with captured_logs(JsonFormatter()) as stream:
        async with serving_app() as served:
            await served.start(experiment())
            ramped = await served.start(
                experiment(version=2, arms=(("control", "test-1", 0.1), ("new", "test-2", 0.9)))
            )
            forced = (await served.rank("u1", arm="new")).json()
            stopped = await served.client.delete(EXPERIMENT_PATH, headers=ADMIN)
            after = (await served.rank("u1")).json()
            again = await served.client.delete(EXPERIMENT_PATH, headers=ADMIN)
            shown = await served.shown()
    assert ramped.status_code == 200
    assert [a["share"] for a in ramped.json()["experiment"]["arms"]] == [0.1, 0.9]
    assert forced["arm"] == "new"
    assert stopped.status_code == 200
    assert stopped.json()["stopped"]["version"] == 2
    assert (after["experiment"], after["arm"], after["bundle_version"]) == (None, None, "test-1")
    assert again.json() == {"stopped": None}
    assert shown == {"experiment": None}
    # The replaced and the stopped experiment's bundles (two each) were retired, by shutdown.
    messages = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    retired = Counter(m for m in messages if m.startswith("retired bundle"))
    assert retired == {"retired bundle test-1": 2, "retired bundle test-2": 2}


async def test_the_admin_key_guards_the_endpoints(serving_app: ServingApp) -> None:
    async with serving_app() as served:
        answers = [
            await served.client.get(EXPERIMENT_PATH),
            await served.client.put(EXPERIMENT_PATH, json=experiment()),
            await served.client.delete(EXPERIMENT_PATH, headers={"X-API-Key": "wrong"}),
        ]
    assert [answer.status_code for answer in answers] == [401, 401, 401]


async def test_log_lines_and_spans_carry_the_experiment_and_arm(serving_app: ServingApp) -> None:
    stream: io.StringIO
    with captured_logs(JsonFormatter()) as stream:
        async with serving_app() as served:
            await served.start(experiment())
            arm = (await served.rank("u1")).json()["arm"]
            await served.client.delete(EXPERIMENT_PATH, headers=ADMIN)
            await served.rank("u1")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    ranks = [line for line in lines if line.get("path") == "/v1/rank"]
    assert len(ranks) == 2
    assert (ranks[0]["experiment"], ranks[0]["arm"]) == ("ranker-ab", arm)
    assert "experiment" not in ranks[1] and "arm" not in ranks[1]


def _names(metrics: str) -> set[str]:
    return {line.split("{")[0] for line in metrics.splitlines() if line.startswith("reaseq_")}


async def test_every_experiment_metric_of_the_dashboard_is_exported(
    serving_app: ServingApp,
) -> None:
    dashboard = Path(__file__).resolve().parents[3] / "deploy/grafana/dashboards/reaseq.json"
    panels: list[dict[str, Any]] = json.loads(dashboard.read_text())["panels"]
    queries = " ".join(t["expr"] for p in panels for t in p.get("targets", []))
    wanted = EXPERIMENT_METRICS
    assert all(name in queries for name in wanted), "a panel per experiment metric"
    body = experiment(shadows=[{"name": "shadow", "bundle": "test-2"}])
    async with serving_app() as served:
        await served.start(body)
        await served.rank("u1")
        await served.runtime.experiments.shadows.join()
        exported = _names((await served.client.get("/metrics")).text)
    assert wanted <= exported
