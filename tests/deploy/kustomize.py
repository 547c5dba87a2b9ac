"""A small Kustomize renderer for the tests (no kustomize binary here).

It implements only what deploy/k8s uses, and refuses anything else so that an overlay cannot
silently rely on a feature it does not honour:

- ``resources``: YAML files, or folders holding a ``kustomization.yaml`` (rendered recursively);
- ``components``: folders with ``kind: Component`` (their resources, then their patches, applied
  to everything accumulated so far);
- ``patches`` with a ``path`` and no ``target``: strategic-merge patches matched by apiVersion,
  kind and name. Maps merge recursively, ``null`` deletes a key, ``$patch: delete`` removes the
  resource. Lists with a Kubernetes patch merge key (containers by name, volumeMounts by
  mountPath, ...) merge item by item in built-in kinds; every other list, and every list of a
  custom resource, is replaced, as Kustomize does;
- ``images``: ``name`` -> ``newName``/``newTag`` in containers and initContainers;
- ``namespace``: set on every resource.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

KUSTOMIZATION_FILE = "kustomization.yaml"
SUPPORTED_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "components",
    "patches",
    "images",
    "namespace",
}
BUILTIN_GROUPS = {"v1", "apps/v1", "autoscaling/v2", "policy/v1", "batch/v1"}
# Patch merge keys of the Kubernetes API (x-kubernetes-patch-merge-key) for the lists we use.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
}


class KustomizeError(ValueError):
    pass


def load_documents(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def read_kustomization(folder: Path) -> Resource:
    kustomization = yaml.safe_load((folder / KUSTOMIZATION_FILE).read_text())
    unsupported = set(kustomization) - SUPPORTED_FIELDS
    if unsupported:
        raise KustomizeError(f"{folder}: fields this renderer does not implement: {unsupported}")
    for patch in kustomization.get("patches", []):
        if set(patch) != {"path"}:
            raise KustomizeError(f"{folder}: only `patches: - path: ...` is implemented: {patch}")
    return kustomization


def render(folder: Path) -> list[Resource]:
    """The resources ``kustomize build folder`` would print (same content, any order)."""
    kustomization = read_kustomization(folder)
    if kustomization.get("kind", "Kustomization") != "Kustomization":
        raise KustomizeError(f"{folder} is a {kustomization['kind']}, not a Kustomization")
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        target = (folder / entry).resolve()
        resources += render(target) if target.is_dir() else load_documents(target)
    for entry in kustomization.get("components", []):
        resources = apply_component((folder / entry).resolve(), resources)
    resources = apply_patches(folder, kustomization, resources)
    for image in kustomization.get("images", []):
        resources = [set_image(resource, image) for resource in resources]
    if "namespace" in kustomization:
        for resource in resources:
            resource["metadata"]["namespace"] = kustomization["namespace"]
    check_unique(resources, folder)
    return resources


def apply_component(folder: Path, resources: list[Resource]) -> list[Resource]:
    component = read_kustomization(folder)
    if component.get("kind") != "Component":
        raise KustomizeError(f"{folder} is not a Component")
    if {"images", "namespace", "components"} & set(component):
        raise KustomizeError(f"{folder}: components here only add resources and patches")
    added = [
        doc for entry in component.get("resources", []) for doc in load_documents(folder / entry)
    ]
    return apply_patches(folder, component, resources + added)


def apply_patches(
    folder: Path, kustomization: Resource, resources: list[Resource]
) -> list[Resource]:
    for entry in kustomization.get("patches", []):
        for patch in load_documents(folder / entry["path"]):
            resources = apply_patch(resources, patch, where=folder / entry["path"])
    return resources


def resource_id(resource: Resource) -> tuple[str, str, str]:
    return resource["apiVersion"], resource["kind"], resource["metadata"]["name"]


def apply_patch(resources: list[Resource], patch: Resource, where: Path) -> list[Resource]:
    matches = [
        i for i, resource in enumerate(resources) if resource_id(resource) == resource_id(patch)
    ]
    if len(matches) != 1:
        raise KustomizeError(f"{where}: patch target {resource_id(patch)} matched {len(matches)}")
    (index,) = matches
    if patch.get("$patch") == "delete":
        return resources[:index] + resources[index + 1 :]
    builtin = patch["apiVersion"] in BUILTIN_GROUPS
    merged = strategic_merge(resources[index], patch, builtin=builtin)
    return [*resources[:index], merged, *resources[index + 1 :]]


def strategic_merge(base: Any, patch: Any, builtin: bool, field: str = "") -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = strategic_merge(merged[key], value, builtin, key)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and builtin and field in MERGE_KEYS:
        return merge_lists(base, patch, MERGE_KEYS[field], builtin)
    return copy.deepcopy(patch)


def merge_lists(base: list[Any], patch: list[Any], key: str, builtin: bool) -> list[Any]:
    merged = copy.deepcopy(base)
    for item in patch:
        same = [i for i, existing in enumerate(merged) if existing.get(key) == item.get(key)]
        if same:
            merged[same[0]] = strategic_merge(merged[same[0]], item, builtin)
        else:
            merged.append(copy.deepcopy(item))
    return merged


def pod_spec(resource: Resource) -> Resource | None:
    """The pod template's spec of a workload, or None for other kinds."""
    if resource["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
        return resource["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    return None


def set_image(resource: Resource, image: Resource) -> Resource:
    spec = pod_spec(resource)
    if spec is None:
        return resource
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        name, _, tag = container["image"].partition(":")
        if name == image["name"]:
            name = image.get("newName", name)
            tag = image.get("newTag", tag)
            container["image"] = f"{name}:{tag}" if tag else name
    return resource


def check_unique(resources: list[Resource], folder: Path) -> None:
    ids = [resource_id(resource) for resource in resources]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise KustomizeError(f"{folder}: duplicate resources {duplicates}")
