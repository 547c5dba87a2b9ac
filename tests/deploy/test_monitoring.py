"""Monitoring on Kubernetes: the PrometheusRule is the rules file, and rules and dashboard keep
deployments apart by ``namespace`` and ``job``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from tests.deploy.kustomize import Resource, load_documents, render
from tests.deploy.prometheus_rule import PROMETHEUS_RULE, RULES, prometheus_rule

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ROOT / "deploy" / "k8s" / "overlays"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "reaseq.json"
KEPT = {"namespace", "job"}
#: What every dashboard query selects: the deployment the viewer chose.
CHOSEN = {("namespace", "$namespace"), ("job", "$job")}
#: Grafana's interval variable, which PromQL cannot parse.
RATE_INTERVAL = ("$__rate_interval", "5m")


def nodes(node: Any) -> Iterator[Any]:
    """Every node of a parsed PromQL expression, depth first."""
    yield node
    if isinstance(node, promql_parser.BinaryExpr):
        children = [node.lhs, node.rhs]
    elif isinstance(node, promql_parser.Call):
        children = list(node.args)
    elif isinstance(node, promql_parser.MatrixSelector):
        children = [node.vector_selector]
    elif isinstance(node, promql_parser.AggregateExpr):
        children = [node.expr] + ([node.param] if node.param is not None else [])
    elif hasattr(node, "expr"):  # parentheses, unary minus, subqueries
        children = [node.expr]
    else:
        children = []
    for child in children:
        yield from nodes(child)


def parsed(expr: str) -> list[Any]:
    return list(nodes(promql_parser.parse(expr.replace(*RATE_INTERVAL))))


def matchers(selector: Any) -> dict[str, tuple[str, str]]:
    return {m.name: (str(m.op), m.value) for m in selector.matchers.matchers}


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def test_the_prometheus_rule_is_the_rules_file() -> None:
    assert load_documents(PROMETHEUS_RULE) == [prometheus_rule()], (
        f"{PROMETHEUS_RULE.name} is stale: run `python -m tests.deploy.prometheus_rule`"
    )


@pytest.mark.parametrize("overlay", ["cpu", "gpu", "cpu-redis"])
def test_every_overlay_deploys_the_rules_and_the_scraping(overlay: str) -> None:
    resources = render(OVERLAYS / overlay)
    (rule,) = [r for r in resources if r["kind"] == "PrometheusRule"]
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    assert rule["metadata"]["namespace"] == "reaseq"
    assert [r["kind"] for r in resources].count("ServiceMonitor") == 1


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r.get("alert") or r.get("record"))
def test_every_rule_keeps_deployments_apart(rule: dict[str, Any]) -> None:
    tree = parsed(rule["expr"])
    for node in tree:
        if isinstance(node, promql_parser.AggregateExpr):
            modifier = node.modifier
            assert modifier is not None and str(modifier.type).endswith("By"), node
            assert set(modifier.labels) >= KEPT, f"{node} must keep namespace and job"
        if isinstance(node, promql_parser.VectorSelector):
            assert "namespace" not in matchers(node), "a rule serves every namespace"


def test_the_rules_job_is_the_one_the_service_monitor_makes() -> None:
    """The Prometheus Operator names a ServiceMonitor's job after the Service it scrapes."""
    jobs = {
        matchers(node)["job"][1]
        for rule in rules()
        for node in parsed(rule["expr"])
        if isinstance(node, promql_parser.VectorSelector) and "job" in matchers(node)
    }
    resources = render(OVERLAYS / "cpu")
    (monitor,) = [r for r in resources if r["kind"] == "ServiceMonitor"]
    assert "jobLabel" not in monitor["spec"]
    wanted = monitor["spec"]["selector"]["matchLabels"].items()
    services = [r for r in resources if r["kind"] == "Service"]
    scraped = {s["metadata"]["name"] for s in services if wanted <= s["metadata"]["labels"].items()}
    assert jobs == scraped == {"reaseq"}


def _variables() -> dict[str, Resource]:
    dashboard = json.loads(DASHBOARD.read_text())
    return {variable["name"]: variable for variable in dashboard["templating"]["list"]}


def test_the_dashboard_chooses_one_namespace_and_one_job() -> None:
    variables = _variables()
    for name in KEPT:
        assert variables[name]["type"] == "query"
        # One deployment at a time: staging and production never add up on a panel.
        assert not variables[name].get("multi") and not variables[name].get("includeAll")
    assert "$namespace" in variables["job"]["query"]["query"]
    assert {"$namespace", "$job"} <= set(variables["instance"]["query"]["query"].split('"'))


@pytest.mark.parametrize("query", dashboard_queries())
def test_every_dashboard_query_selects_the_chosen_deployment(query: str) -> None:
    selectors = [node for node in parsed(query) if isinstance(node, promql_parser.VectorSelector)]
    assert selectors
    for selector in selectors:
        chosen = {(name, value) for name, (_, value) in matchers(selector).items()}
        assert chosen >= CHOSEN, f"{selector} does not select $namespace and $job"
