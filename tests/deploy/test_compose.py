"""deploy/compose.yaml: valid against the Compose Specification schema, and wired together."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
# The compose-spec JSON schema (github.com/compose-spec/compose-spec, schema/compose-spec.json,
# Apache-2.0), as vendored by the check-jsonschema package (a dev extra).
SCHEMA = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # type: ignore[no-any-return]


def test_the_compose_file_meets_the_compose_spec(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(compose)


def test_the_ranker_waits_for_its_bundle(compose: dict[str, Any]) -> None:
    services = compose["services"]
    ranker, bundle = services["ranker"], services["bundle"]
    assert ranker["depends_on"]["bundle"] == {"condition": "service_completed_successfully"}
    assert bundle["build"]["target"] == "demo"
    assert ranker["build"]["target"] == "cpu"
    assert "reaseq demo --bundles /demo/bundles --out /demo/var" in bundle["command"][-1]
    assert ranker["environment"]["REASEQ_BUNDLE_ROOT"] == "/demo/bundles"
    assert ranker["environment"]["REASEQ_EMBEDDED_USERS_PATH"] == "/demo/var/users.npz"
    assert "demo:/demo:ro" in ranker["volumes"]
    assert "demo:/demo" in bundle["volumes"]


def bind_sources(compose: dict[str, Any]) -> list[Path]:
    sources = []
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                sources.append((COMPOSE.parent / source).resolve())
    return sources


def test_every_bind_mounted_path_exists(compose: dict[str, Any]) -> None:
    missing = [str(p.relative_to(ROOT)) for p in bind_sources(compose) if not p.exists()]
    assert not missing, f"compose mounts paths that do not exist: {missing}"


def test_prometheus_scrapes_the_ranker_and_loads_the_rules(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((ROOT / "deploy/compose/prometheus/prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "reaseq"]
    port = compose["services"]["ranker"]["ports"][0].rsplit(":", 1)[1]
    assert job["static_configs"][0]["targets"] == [f"ranker:{port}"]
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./prometheus/rules:/etc/prometheus/rules:ro" in mounts
    rules = ROOT / "deploy/prometheus/rules/reaseq.rules.yml"
    if rules.exists():
        assert yaml.safe_load(rules.read_text())["groups"], "no rule groups"


def test_grafana_gets_the_datasource_and_the_dashboard(compose: dict[str, Any]) -> None:
    provisioning = ROOT / "deploy/compose/grafana/provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources/prometheus.yaml").read_text())[
        "datasources"
    ]
    assert source["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((provisioning / "dashboards/reaseq.yaml").read_text())["providers"]
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    dashboard = ROOT / "deploy/grafana/dashboards/reaseq.json"
    if dashboard.exists():
        uids = {
            panel["datasource"]["uid"]
            for panel in json.loads(dashboard.read_text()).get("panels", [])
            if isinstance(panel.get("datasource"), dict) and "uid" in panel["datasource"]
        }
        assert uids <= {source["uid"], "${datasource}", "${DS_PROMETHEUS}"}, uids


def test_locust_runs_the_load_test_against_the_ranker(compose: dict[str, Any]) -> None:
    services = compose["services"]
    master, worker = services["locust-master"], services["locust-worker"]
    assert master["build"]["target"] == "loadtest"
    assert master["image"] == worker["image"]
    assert "http://ranker:8000" in master["command"]
    assert worker["command"][worker["command"].index("--master-host") + 1] == "locust-master"
    for service in (master, worker):
        assert "../loadtest:/mnt/loadtest:ro" in service["volumes"]
        assert "demo:/demo:ro" in service["volumes"]
        command = service["command"]
        assert command[:2] == ["-f", "/mnt/loadtest/locustfile.py"]
        assert command[command.index("--bundle-root") + 1] == "/demo/bundles"
        assert command[command.index("--users-path") + 1] == "/demo/var/users.npz"
