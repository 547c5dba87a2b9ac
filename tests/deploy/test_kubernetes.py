"""deploy/k8s: every manifest parses and validates against the Kubernetes schemas; every overlay,
rendered by `kubectl kustomize`, validates and keeps the operational invariants."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from service.settings import Settings
from tests.deploy.kustomize import (
    KUSTOMIZATION_FILE,
    Resource,
    load_documents,
    pod_spec,
    read_kustomization,
    render,
)

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SCHEMAS = Path(__file__).parent / "schemas"
# The Kubernetes release whose schemas (shipped by kubernetes-validate) the manifests must meet.
KUBERNETES_VERSION = "1.33"
OVERLAYS = ("cpu", "gpu", "cpu-redis")
CUSTOM_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule.json",
    ("ray.io/v1", "RayJob"): "rayjob.json",
}
PRESTOP_SLEEP_S = 5


def validate(resource: Resource) -> None:
    """Kubernetes schemas (strict: unknown fields fail) or, for custom resources, ours."""
    custom = CUSTOM_SCHEMAS.get((resource["apiVersion"], resource["kind"]))
    if custom is not None:
        jsonschema.Draft202012Validator(json.loads((SCHEMAS / custom).read_text())).validate(
            resource
        )
        return
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def kustomization_dirs() -> list[Path]:
    return sorted(path.parent for path in K8S.rglob(KUSTOMIZATION_FILE))


def transformer_dirs() -> set[Path]:
    """Folders that kustomizations list under ``transformers``: their resources configure a
    transformer (``apiVersion: builtin``) and are not deployed."""
    return {
        (folder / entry).resolve()
        for folder in kustomization_dirs()
        for entry in read_kustomization(folder).get("transformers", [])
    }


def referenced_files() -> tuple[set[Path], set[Path], set[Path]]:
    """(resource files, patch files, transformer configurations) named by any kustomization."""
    resources: set[Path] = set()
    patches: set[Path] = set()
    configurations: set[Path] = set()
    for folder in kustomization_dirs():
        kustomization = read_kustomization(folder)
        named = configurations if folder.resolve() in transformer_dirs() else resources
        for entry in kustomization.get("resources", []):
            path = (folder / entry).resolve()
            if not path.is_dir():
                named.add(path)
        patches |= {(folder / p["path"]).resolve() for p in kustomization.get("patches", [])}
    return resources, patches, configurations


def rendered(overlay: str) -> list[Resource]:
    return render(K8S / "overlays" / overlay)


def one(resources: list[Resource], kind: str, name: str = "reaseq") -> Resource:
    (found,) = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def containers(resources: list[Resource]) -> Iterator[tuple[Resource, Resource]]:
    for resource in resources:
        spec = pod_spec(resource)
        if spec is not None:
            for container in spec["containers"] + spec.get("initContainers", []):
                yield resource, container


def ranker(resources: list[Resource]) -> Resource:
    (container,) = one(resources, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container  # type: ignore[no-any-return]


# --- every file -----------------------------------------------------------------------------


def test_the_schemas_cover_the_chosen_kubernetes_version() -> None:
    assert KUBERNETES_VERSION in {
        kubernetes_validate.utils.major_minor(v) for v in kubernetes_validate.utils.all_versions()
    }


def test_every_yaml_file_is_a_resource_a_patch_or_a_kustomization() -> None:
    resources, patches, configurations = referenced_files()
    for path in K8S.rglob("*.y*ml"):
        assert path.suffix == ".yaml", f"{path}: use .yaml"
        named = resources | patches | configurations
        assert path.name == KUSTOMIZATION_FILE or path in named, f"orphan: {path}"


@pytest.mark.parametrize(
    "path",
    sorted(referenced_files()[0]),
    ids=lambda p: str(p.relative_to(K8S)),
)
def test_every_manifest_validates(path: Path) -> None:
    documents = load_documents(path)
    assert documents, f"{path} is empty"
    for document in documents:
        validate(document)


# --- rendered overlays ----------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_resource_validates(overlay: str) -> None:
    for resource in rendered(overlay):
        validate(resource)
        assert resource["metadata"].get("namespace") == "reaseq", resource_name(resource)


def resource_name(resource: Resource) -> str:
    return f"{resource['kind']}/{resource['metadata']['name']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_runs_locked_down(overlay: str) -> None:
    for workload, container in containers(rendered(overlay)):
        pod_context = pod_spec(workload)["securityContext"]  # type: ignore[index]
        assert pod_context["runAsNonRoot"] is True
        assert pod_context["runAsUser"] > 0
        assert pod_context["seccompProfile"] == {"type": "RuntimeDefault"}
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, container["name"]
        assert "memory" in container["resources"]["limits"], container["name"]
        assert ":" in container["image"], f"{container['image']} has no tag"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_shutdown_budget(overlay: str) -> None:
    resources = rendered(overlay)
    deployment = one(resources, "Deployment")
    container = ranker(resources)
    port_names = {port["name"] for port in container["ports"]}
    paths = {probe: container[probe]["httpGet"] for probe in ("startupProbe", "livenessProbe")}
    assert {p["path"] for p in paths.values()} == {"/livez"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in port_names
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", str(PRESTOP_SLEEP_S)]
    config = one(resources, "ConfigMap", "reaseq-config")["data"]
    graceful = float(config["REASEQ_GRACEFUL_SHUTDOWN_S"])
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    # Leave the lifespan's shutdown (store close) a few seconds before the SIGKILL.
    assert PRESTOP_SLEEP_S + graceful + 5 <= grace


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_references_resolve(overlay: str) -> None:
    resources = rendered(overlay)
    deployment = one(resources, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert one(resources, "Service")["spec"]["selector"].items() <= labels.items()
    assert (
        one(resources, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"]
        == (deployment["spec"]["selector"]["matchLabels"])
    )
    service_labels = one(resources, "Service")["metadata"]["labels"]
    monitor = one(resources, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service_labels.items()
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {
        p["name"] for p in one(resources, "Service")["spec"]["ports"]
    }
    scalers = [r for r in resources if r["kind"] in {"HorizontalPodAutoscaler", "ScaledObject"}]
    assert len(scalers) == 1, "exactly one autoscaler may own the replica count"
    assert scalers[0]["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
    names = {(r["kind"], r["metadata"]["name"]) for r in resources}
    spec = deployment["spec"]["template"]["spec"]
    for source in ranker(resources)["envFrom"]:
        assert ("ConfigMap", source["configMapRef"]["name"]) in names
    for variable in ranker(resources)["env"]:
        if "valueFrom" in variable:
            assert ("Secret", variable["valueFrom"]["secretKeyRef"]["name"]) in names
    for volume in spec["volumes"]:
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            assert ("PersistentVolumeClaim", claim) in names
        if "secret" in volume:
            assert ("Secret", volume["secret"]["secretName"]) in names
    mounts = {m["name"]: m for m in ranker(resources)["volumeMounts"]}
    assert set(mounts) == {v["name"] for v in spec["volumes"]}
    assert mounts["bundles"]["readOnly"] is True
    assert config_of(resources)["REASEQ_BUNDLE_ROOT"] == mounts["bundles"]["mountPath"]
    # The admin keys file lies in the mounted Secret, under a key the Secret has.
    env = {v["name"]: v.get("value") for v in ranker(resources)["env"]}
    keys_file = Path(env["REASEQ_ADMIN_API_KEYS_FILE"])
    assert str(keys_file.parent) == mounts["api-keys"]["mountPath"]
    secret = one(resources, "Secret", "reaseq-api-keys")
    assert keys_file.name in secret["stringData"]


def config_of(resources: list[Resource]) -> dict[str, str]:
    return one(resources, "ConfigMap", "reaseq-config")["data"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_setting_in_the_config_map_is_one_the_service_reads(overlay: str) -> None:
    fields = {f"REASEQ_{name.upper()}" for name in Settings.model_fields}
    unknown = set(config_of(rendered(overlay))) - fields
    assert not unknown, f"service/settings.py reads no {unknown}"


def test_the_cpu_overlay() -> None:
    resources = rendered("cpu")
    container = ranker(resources)
    assert container["image"] == "registry.example.com/reaseq:0.1.0-cpu"
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert config_of(resources).get("REASEQ_DEVICE", "cpu") == "cpu"
    assert one(resources, "HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 2
    assert config_of(resources)["REASEQ_REDIS_URL"] == "redis://redis.example.internal:6379/0"


def test_the_gpu_overlay() -> None:
    resources = rendered("gpu")
    container = ranker(resources)
    assert container["image"] == "registry.example.com/reaseq:0.1.0-gpu"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert config_of(resources)["REASEQ_DEVICE"] == "cuda", "a GPU pod computes on its GPU"
    # The patch merged into the base container instead of replacing it.
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["failureThreshold"] == 150
    scaled = one(resources, "ScaledObject")
    assert [t["type"] for t in scaled["spec"]["triggers"]] == ["prometheus"]
    assert "reaseq_requests_in_flight" in scaled["spec"]["triggers"][0]["metadata"]["query"]


def test_the_in_cluster_redis_overlay() -> None:
    resources = rendered("cpu-redis")
    redis = one(resources, "StatefulSet", "reaseq-redis")
    service = one(resources, "Service", "reaseq-redis")
    assert service["spec"]["selector"].items() <= (
        redis["spec"]["template"]["metadata"]["labels"].items()
    )
    assert config_of(resources)["REASEQ_REDIS_URL"] == "redis://reaseq-redis:6379/0"
    assert config_of(resources)["REASEQ_STORE"] == "redis"


# --- Kustomize ----------------------------------------------------------------------------


def test_every_kustomization_renders_or_is_a_component() -> None:
    for folder in kustomization_dirs():
        kind = yaml.safe_load((folder / KUSTOMIZATION_FILE).read_text())["kind"]
        if kind == "Kustomization":
            assert render(folder), folder


def prometheus_queries(resources: list[Resource]) -> list[str]:
    return [
        trigger["metadata"]["query"]
        for resource in resources
        if resource["kind"] == "ScaledObject"
        for trigger in resource["spec"]["triggers"]
        if trigger["type"] == "prometheus"
    ]


def test_the_keda_query_counts_the_replicas_of_the_overlays_namespace(tmp_path: Path) -> None:
    (query,) = prometheus_queries(rendered("gpu"))
    assert 'namespace="reaseq"' in query
    # An environment's overlay on top of ours moves everything, the query included.
    staging = tmp_path / "staging"
    staging.mkdir()
    above = Path(os.path.relpath(K8S, staging))  # Kustomize refuses absolute paths
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": "staging",
        "resources": [str(above / "overlays" / "gpu")],
        "transformers": [str(above / "transformers" / "keda-query-namespace")],
    }
    (staging / KUSTOMIZATION_FILE).write_text(yaml.safe_dump(kustomization))
    resources = render(staging)
    assert {r["metadata"]["namespace"] for r in resources} == {"staging"}
    (query,) = prometheus_queries(resources)
    assert 'namespace="staging"' in query


def test_the_autoscaling_metric_is_one_the_service_exports() -> None:
    from prometheus_client import generate_latest

    from service.app import create_app

    exported = generate_latest(create_app(Settings.model_construct()).state.metrics.registry)
    queries = [query for overlay in OVERLAYS for query in prometheus_queries(rendered(overlay))]
    assert queries
    for query in queries:
        for metric in re.findall(r"\breaseq_\w+", query):
            assert f"\n{metric} ".encode() in b"\n" + exported or (
                f"\n{metric}{{".encode() in b"\n" + exported
            ), f"the service exports no {metric}"
