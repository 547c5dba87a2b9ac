"""The Grafana dashboard and the Prometheus rules only query metrics the service exports, and
every alert has a runbook entry in docs/OPERATIONS.md."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from tests.support.experiments import EXPERIMENT_METRICS
from tests.support.exposition import names
from tests.support.serving import Serving

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deploy/grafana/dashboards/reaseq.json"
RULES = ROOT / "deploy/prometheus/rules/reaseq.rules.yml"
SCRAPE_CONFIG = ROOT / "deploy/prometheus/prometheus.yml"
OPERATIONS = ROOT / "docs/OPERATIONS.md"
#: Made by Prometheus, not by the service.
SYNTHETIC = {"up"}
#: Exported only when the graphs run on a CUDA device (the tests run on CPU).
GPU_ONLY = {"reaseq_gpu_memory_used_bytes", "reaseq_gpu_memory_total_bytes"}
#: Exported only with a store that has a circuit breaker (Redis; test_store_outage.py reads it
#: from a service on a real Redis); the embedded store of these tests has none.
BREAKER_ONLY = {"reaseq_store_breaker_state"}
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$instance": ".*",
    "$namespace": "reaseq",
    "$job": "reaseq",
}


def _grafana_to_promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


_WRAPPERS = (
    promql_parser.AggregateExpr,
    promql_parser.ParenExpr,
    promql_parser.UnaryExpr,
    promql_parser.SubqueryExpr,
)


def selectors(node: Any) -> Iterator[str]:
    """Metric names of every vector selector in a parsed PromQL expression."""
    if isinstance(node, promql_parser.VectorSelector):
        if node.name:
            yield node.name
    elif isinstance(node, promql_parser.MatrixSelector):
        yield from selectors(node.vector_selector)
    elif isinstance(node, promql_parser.BinaryExpr):
        yield from selectors(node.lhs)
        yield from selectors(node.rhs)
    elif isinstance(node, promql_parser.Call):
        for argument in node.args:
            yield from selectors(argument)
    elif isinstance(node, _WRAPPERS):
        yield from selectors(node.expr)


def metric_names(expr: str) -> set[str]:
    return set(selectors(promql_parser.parse(expr)))


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        _grafana_to_promql(target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_queries_parse_and_name_metrics() -> None:
    assert len(dashboard_queries()) >= 15
    for expr in dashboard_queries() + [rule["expr"] for rule in rules()]:
        assert metric_names(expr), f"no metric in {expr}"


def test_every_alert_links_a_runbook_entry() -> None:
    operations = OPERATIONS.read_text()
    anchors = {_anchor(h) for h in re.findall(r"^#+ (.+)$", operations, flags=re.MULTILINE)}
    alerts = [rule for rule in rules() if "alert" in rule]
    assert {a["alert"] for a in alerts} >= {
        "ReaseqLatencyBudgetFastBurn",
        "ReaseqLatencyBudgetSlowBurn",
        "ReaseqHighErrorRatio",
        "ReaseqStoreErrors",
        "ReaseqTargetDown",
        "ReaseqNotReady",
        "ReaseqBundleReloadFailed",
    }
    for alert in alerts:
        url = alert["annotations"]["runbook_url"]
        document, _, anchor = url.partition("#")
        assert document == "docs/OPERATIONS.md", url
        assert anchor in anchors, f"{alert['alert']}: no heading for #{anchor}"


def test_scrape_config_loads_the_rules() -> None:
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    assert config["rule_files"] == ["rules/reaseq.rules.yml"]
    assert config["scrape_configs"][0]["job_name"] == "reaseq"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


@pytest.mark.anyio
async def test_every_queried_metric_is_exported(serving: Serving) -> None:
    async with serving() as client:
        await client.post("/v1/rank", json={"user_id": "u1", "candidates": ["i1", "i3"]})
        await client.post("/v1/rank", json={"user_id": "nobody", "candidates": ["nope"]})
        await client.post("/v1/rank", json={"user_id": ""})
        exported = names((await client.get("/metrics")).text)
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    queried = set().union(*(metric_names(e) for e in dashboard_queries()))
    queried |= set().union(*(metric_names(rule["expr"]) for rule in rules()))
    missing = {
        name
        for name in queried - SYNTHETIC - GPU_ONLY - BREAKER_ONLY - EXPERIMENT_METRICS
        if name not in exported and name not in recorded
    }
    assert not missing, f"queried but not exported: {sorted(missing)}"
    # Recording rules used by the dashboard must exist.
    assert {n for n in queried if ":" in n} <= recorded
