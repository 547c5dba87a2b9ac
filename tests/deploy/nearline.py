"""The nearline component as the tests see it: deploy/k8s/components/nearline-ray rendered
through overlays/cpu-redis-nearline by `kubectl kustomize`, its trigger script loaded as a module,
and validation of a RayJob (the vendored schema, its pod templates as core PodTemplates)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import jsonschema
import kubernetes_validate

from tests.deploy import kustomize
from tests.deploy.test_kubernetes import KUBERNETES_VERSION
from tests.deploy.test_kubernetes import validate as validate_core

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
COMPONENT = K8S / "components" / "nearline-ray"
OVERLAY = K8S / "overlays" / "cpu-redis-nearline"
RAYJOB_SCHEMA = Path(__file__).parent / "schemas" / "rayjob.json"
TEMPLATE = "reaseq-nearline"
IMAGE = "registry.example.com/reaseq:0.1.0-nearline"
TRIGGER_IMAGE = "registry.example.com/reaseq:0.1.0-nearline-trigger"


def load_trigger() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nearline_trigger", COMPONENT / "trigger.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


trigger = load_trigger()


def validate(resource: kustomize.Resource) -> None:
    """A RayJob against the vendored schema and its pod templates as core PodTemplates; any other
    resource as tests/deploy/test_kubernetes.py validates it."""
    if (resource["apiVersion"], resource["kind"]) != ("ray.io/v1", "RayJob"):
        validate_core(resource)
        return
    jsonschema.Draft202012Validator(json.loads(RAYJOB_SCHEMA.read_text())).validate(resource)
    for path, template in kustomize.pod_templates(resource).items():
        wrapped = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}}
        try:
            kubernetes_validate.validate(
                {**wrapped, "template": template}, KUBERNETES_VERSION, strict=True
            )
        except kubernetes_validate.ValidationError as error:
            raise AssertionError(f"{path}: {error}") from error


def rendered() -> list[kustomize.Resource]:
    return kustomize.render(OVERLAY)


def one(resources: list[kustomize.Resource], kind: str, name: str) -> kustomize.Resource:
    (found,) = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def rayjob(resources: list[kustomize.Resource]) -> kustomize.Resource:
    return one(resources, "RayJob", TEMPLATE)
