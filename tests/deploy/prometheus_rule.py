"""The Prometheus Operator's PrometheusRule, made from deploy/prometheus/rules/reaseq.rules.yml.

deploy/k8s/components/monitoring/prometheusrule.yaml is this module's output, written by

    python -m tests.deploy.prometheus_rule

and tests/deploy/test_monitoring.py fails when the two differ, so a Prometheus that loads the
rules file and one that the Operator feeds alert on the same rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/prometheus/rules/reaseq.rules.yml"
PROMETHEUS_RULE = ROOT / "deploy/k8s/components/monitoring/prometheusrule.yaml"
HEADER = """\
# Generated from deploy/prometheus/rules/reaseq.rules.yml by
#   python -m tests.deploy.prometheus_rule
# Edit the rules file, then run the command (tests/deploy/test_monitoring.py compares the two).
"""


def prometheus_rule() -> dict[str, Any]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "reaseq",
            "labels": {
                "app.kubernetes.io/name": "reaseq",
                "app.kubernetes.io/component": "ranker",
            },
        },
        "spec": {"groups": groups},
    }


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the PromQL expressions) as literal blocks, as in the rules file."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _string)


def manifest() -> str:
    body = yaml.dump(prometheus_rule(), Dumper=_BlockDumper, sort_keys=False, width=80)
    return HEADER + body


if __name__ == "__main__":
    PROMETHEUS_RULE.write_text(manifest())
