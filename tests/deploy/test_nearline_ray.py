"""The nearline generation on KubeRay: deploy/k8s/components/nearline-ray, rendered through
overlays/cpu-redis-nearline by `kubectl kustomize`.

Every resource validates: the core kinds against the Kubernetes schemas, the RayJob against the
schema vendored in tests/deploy/schemas/rayjob.json and its pod templates (head, workers, submitter)
as core PodTemplates. And the invariants hold: the entrypoint runs `reaseq scale nearline --store
redis --incremental` with the service's own Redis URL, the pods mount the bundle volume and keep the
incremental state on a volume, every container runs locked down with resource limits, runs never
overlap, and the CronJob runs the component's trigger (its flow: test_nearline_trigger.py)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import PurePosixPath

from tests.deploy import kustomize
from tests.deploy.nearline import (
    COMPONENT,
    IMAGE,
    K8S,
    TEMPLATE,
    TRIGGER_IMAGE,
    one,
    rayjob,
    rendered,
    trigger,
    validate,
)
from tests.deploy.test_dockerfile import stages


def containers(template: kustomize.Resource) -> Iterator[kustomize.Resource]:
    yield from template["spec"]["containers"]
    yield from template["spec"].get("initContainers", [])


def ray_templates(job: kustomize.Resource) -> dict[str, kustomize.Resource]:
    """The head's and the worker groups' pod templates (not the submitter's)."""
    return {path: t for path, t in kustomize.pod_templates(job).items() if "rayClusterSpec" in path}


def nearline_templates(resources: list[kustomize.Resource]) -> dict[str, kustomize.Resource]:
    """The pod templates of the component: the RayJob's and the CronJob's."""
    return {
        f"{r['kind']}/{r['metadata']['name']} {path}": template
        for r in resources
        if r["kind"] in {"RayJob", "CronJob"}
        for path, template in kustomize.pod_templates(r).items()
    }


def head(job: kustomize.Resource) -> kustomize.Resource:
    return job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]  # type: ignore[no-any-return]


def submitter(job: kustomize.Resource) -> kustomize.Resource:
    return job["spec"]["submitterPodTemplate"]  # type: ignore[no-any-return]


def options(job: kustomize.Resource) -> dict[str, str | bool]:
    """The entrypoint's options after `reaseq scale nearline`: a value, or True for a flag."""
    words = shlex.split(job["spec"]["entrypoint"])
    assert words[:3] == ["reaseq", "scale", "nearline"], words
    found: dict[str, str | bool] = {}
    rest = words[3:]
    for index, word in enumerate(rest):
        if word.startswith("--"):
            following = rest[index + 1] if index + 1 < len(rest) else "--"
            found[word] = True if following.startswith("--") else following
    return found


def path_option(job: kustomize.Resource, option: str) -> str:
    value = options(job)[option]
    assert isinstance(value, str), f"{option} names no path"
    return value


def mount_of(
    template: kustomize.Resource, container: kustomize.Resource, path: str
) -> tuple[kustomize.Resource, kustomize.Resource]:
    """The volume mount under which ``path`` lies in the container (the deepest), and its volume."""
    under = [
        m
        for m in container["volumeMounts"]
        if PurePosixPath(path).is_relative_to(PurePosixPath(m["mountPath"]))
    ]
    assert under, f"{path} lies on no volume of {container['name']}"
    mount = max(under, key=lambda m: len(m["mountPath"]))
    (volume,) = [v for v in template["spec"]["volumes"] if v["name"] == mount["name"]]
    return mount, volume


# --- validation -----------------------------------------------------------------------------


def test_every_file_of_the_component_validates() -> None:
    for entry in kustomize.read_kustomization(COMPONENT)["resources"]:
        for document in kustomize.load_documents(COMPONENT / entry):
            validate(document)


def test_every_rendered_resource_validates() -> None:
    for resource in rendered():
        validate(resource)
        assert resource["metadata"].get("namespace") == "reaseq", resource["metadata"]["name"]


def test_the_overlay_adds_the_component_and_changes_nothing_of_cpu_redis() -> None:
    below = {
        (r["kind"], r["metadata"]["name"]): r
        for r in kustomize.render(K8S / "overlays" / "cpu-redis")
    }
    above = {(r["kind"], r["metadata"]["name"]): r for r in rendered()}
    assert {key: above[key] for key in below} == below
    added = {kind for kind, _ in set(above) - set(below)}
    assert added == {"RayJob", "CronJob", "ConfigMap", "PersistentVolumeClaim"} | {
        "ServiceAccount",
        "Role",
        "RoleBinding",
    }


# --- what the job runs ----------------------------------------------------------------------


def test_the_entrypoint_runs_the_incremental_nearline_into_redis() -> None:
    job = rayjob(rendered())
    found = options(job)
    assert found["--store"] == "redis"
    assert found["--incremental"] is True and "--no-incremental" not in found
    # Inside a RayJob, ray.init() finds the cluster through RAY_ADDRESS.
    assert "--ray-address" not in found
    for required in ("--data", "--checkpoint", "--bundles", "--state", "--redis-url"):
        assert isinstance(found.get(required), str), required
    assert job["spec"]["submissionMode"] == "K8sJobMode"


def test_the_redis_url_is_the_services_own_setting() -> None:
    resources = rendered()
    job = rayjob(resources)
    # Quoted, so that the submitter's shell passes the URL on as one word.
    assert '--redis-url "$REASEQ_REDIS_URL"' in job["spec"]["entrypoint"]
    assert options(job)["--redis-url"] == "$REASEQ_REDIS_URL"
    deployment = one(resources, "Deployment", "reaseq")
    (ranker,) = deployment["spec"]["template"]["spec"]["containers"]
    (service_config,) = [s["configMapRef"]["name"] for s in ranker["envFrom"]]
    config = one(resources, "ConfigMap", service_config)["data"]
    assert config["REASEQ_STORE"] == "redis"
    assert config["REASEQ_REDIS_URL"].startswith("redis://")
    # The shells that may expand the entrypoint: the submitter's (K8sJobMode) and the head's.
    for template in (submitter(job), head(job)):
        env = {v["name"]: v for v in template["spec"]["containers"][0]["env"]}
        reference = env["REASEQ_REDIS_URL"]["valueFrom"]["configMapKeyRef"]
        assert reference == {"name": service_config, "key": "REASEQ_REDIS_URL"}
    assert "redis://" not in json.dumps(job), "no Redis URL of its own"


# --- volumes ----------------------------------------------------------------------------------


def test_the_driver_reads_the_bundles_and_inputs_read_only_from_volumes() -> None:
    resources = rendered()
    job = rayjob(resources)
    (bundles_pvc,) = kustomize.load_documents(K8S / "base" / "bundles-pvc.yaml")
    claim = bundles_pvc["metadata"]["name"]
    assert one(resources, "PersistentVolumeClaim", claim)
    bundle_root = one(resources, "ConfigMap", "reaseq-config")["data"]["REASEQ_BUNDLE_ROOT"]
    assert path_option(job, "--bundles") == bundle_root, "the bundle root the service reads"
    # The driver runs on the head; it ships what the workers need through Ray's object store.
    template = head(job)
    driver = template["spec"]["containers"][0]
    mount, volume = mount_of(template, driver, bundle_root)
    assert volume["persistentVolumeClaim"] == {"claimName": claim, "readOnly": True}
    assert mount["mountPath"] == bundle_root and mount["readOnly"] is True
    for option in ("--data", "--checkpoint"):
        mount, volume = mount_of(template, driver, path_option(job, option))
        assert mount["readOnly"] is True, option
        assert volume["persistentVolumeClaim"]["readOnly"] is True, option


def test_the_state_of_incremental_runs_outlives_the_ray_cluster() -> None:
    template = head(rayjob(rendered()))
    driver = template["spec"]["containers"][0]
    mount, volume = mount_of(template, driver, path_option(rayjob(rendered()), "--state"))
    assert "persistentVolumeClaim" in volume, "the state would be lost with the head pod"
    assert not mount.get("readOnly") and not volume["persistentVolumeClaim"].get("readOnly")


def test_every_volume_is_mounted_and_every_claim_exists() -> None:
    resources = rendered()
    claims = {r["metadata"]["name"] for r in resources if r["kind"] == "PersistentVolumeClaim"}
    config_maps = {r["metadata"]["name"] for r in resources if r["kind"] == "ConfigMap"}
    for path, template in nearline_templates(resources).items():
        volumes = {v["name"]: v for v in template["spec"].get("volumes", [])}
        mounted = {m["name"] for c in containers(template) for m in c.get("volumeMounts", [])}
        assert mounted == set(volumes), path
        for volume in volumes.values():
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, path
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, path


# --- pods ---------------------------------------------------------------------------------------


def test_every_container_runs_locked_down_with_limits() -> None:
    templates = nearline_templates(rendered())
    assert len(templates) == 4, templates.keys()  # head, one worker group, submitter, trigger
    for path, template in templates.items():
        pod = template["spec"]["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0, path
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, path
        for container in containers(template):
            where = f"{path} {container['name']}"
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert "memory" in container["resources"]["limits"], where
            assert ":" in container["image"], f"{where}: {container['image']} has no tag"
            # A read-only root needs a writable /tmp (Ray's session folder, kubectl's cache).
            _, volume = mount_of(template, container, "/tmp/x")
            assert "emptyDir" in volume, where


def test_the_ray_cluster_runs_one_image_with_cpu_limits_and_probes() -> None:
    job = rayjob(rendered())
    images = {c["image"] for t in kustomize.pod_templates(job).values() for c in containers(t)}
    assert images == {IMAGE}, "head, workers and submitter must run the same Ray"
    for path, template in kustomize.pod_templates(job).items():
        assert template["spec"]["automountServiceAccountToken"] is False, path
    for path, template in ray_templates(job).items():
        ray = template["spec"]["containers"][0]
        # Ray takes its CPUs from the limit; equal to the request, nothing is throttled.
        assert ray["resources"]["limits"] == ray["resources"]["requests"], path
        ports = {p["name"] for p in ray["ports"]} | {p["containerPort"] for p in ray["ports"]}
        for probe in ("readinessProbe", "livenessProbe"):
            assert ray[probe]["httpGet"]["port"] in ports, (path, probe)
    head_ports = {p["name"] for p in head(job)["spec"]["containers"][0]["ports"]}
    assert "dashboard" in head_ports, "KubeRay finds the job server by this port name"
    for group in job["spec"]["rayClusterSpec"]["workerGroupSpecs"]:
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    assert submitter(job)["spec"]["restartPolicy"] == "Never"


def test_the_rayjob_is_a_suspended_template_that_cleans_up_after_itself() -> None:
    spec = rayjob(rendered())["spec"]
    assert spec["suspend"] is True, "the template itself must never run"
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["ttlSecondsAfterFinished"] > 0
    assert spec["activeDeadlineSeconds"] > 0
    assert spec["backoffLimit"] >= 0


# --- schedule -------------------------------------------------------------------------------


def test_runs_never_overlap_and_come_every_few_minutes() -> None:
    resources = rendered()
    cron = one(resources, "CronJob", TEMPLATE)["spec"]
    minutes, *rest = cron["schedule"].split()
    assert minutes.startswith("*/") and int(minutes[2:]) <= 15 and rest == ["*"] * 4
    assert cron["concurrencyPolicy"] == "Forbid"
    job = cron["jobTemplate"]["spec"]
    ray = rayjob(resources)["spec"]
    attempts = ray["backoffLimit"] + 1
    assert job["activeDeadlineSeconds"] > attempts * ray["activeDeadlineSeconds"]
    (rule, *_) = job["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob"
    assert rule["onExitCodes"] == {
        "containerName": "trigger",
        "operator": "In",
        "values": [trigger.RUN_FAILED],
    }


def test_the_cron_job_runs_the_trigger_of_the_component() -> None:
    resources = rendered()
    template = one(resources, "CronJob", TEMPLATE)["spec"]["jobTemplate"]["spec"]["template"]
    (container,) = template["spec"]["containers"]
    assert container["image"] == TRIGGER_IMAGE
    script = PurePosixPath(container["command"][-1])
    _, volume = mount_of(template, container, str(script))
    config = one(resources, "ConfigMap", volume["configMap"]["name"])
    assert config["data"][script.name] == (COMPONENT / "trigger.py").read_text()
    args = container["args"]
    assert args[args.index("--template") + 1] == TEMPLATE


def test_the_trigger_may_manage_rayjobs_and_nothing_else() -> None:
    resources = rendered()
    pod = one(resources, "CronJob", TEMPLATE)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    account = pod["serviceAccountName"]
    assert one(resources, "ServiceAccount", account)
    assert pod["automountServiceAccountToken"] is True
    (binding,) = [r for r in resources if r["kind"] == "RoleBinding"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": "reaseq"}
    ]
    role = one(resources, "Role", binding["roleRef"]["name"])
    assert binding["roleRef"]["kind"] == "Role"
    (rule,) = role["rules"]
    assert rule["apiGroups"] == ["ray.io"] and rule["resources"] == ["rayjobs"]
    assert set(rule["verbs"]) == {"get", "list", "create", "delete"}


# --- images ---------------------------------------------------------------------------------


def test_the_dockerfile_builds_the_job_and_trigger_images() -> None:
    found = stages()
    nearline = found["nearline"]
    runs = " ".join(nearline.all("RUN"))
    assert '"$1[cpu,train,scale]"' in runs
    # The dashboard and job server on the head, `ray job submit` in the submitter.
    assert '"ray[default]"' in runs
    assert "download.pytorch.org/whl/cpu" in runs, "the CPU build of PyTorch"
    assert nearline.all("USER") == ["10001"]
    trigger_stage = found["nearline-trigger"]
    assert "KUBECTL_SPEC" in " ".join(trigger_stage.all("RUN"))
    assert trigger_stage.all("USER") == ["10001"]
    assert list(found)[-1] == "cpu", "the service image stays the default target"
