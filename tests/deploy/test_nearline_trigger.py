"""The nearline trigger (deploy/k8s/components/nearline-ray/trigger.py), the CronJob's script that
starts a run of the suspended RayJob template, waits for it and prunes old runs: its run manifest,
its pruning rule, and its whole flow against a stand-in kubectl over a file of RayJobs, since the
tests have no cluster."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import kustomize
from tests.deploy.nearline import TEMPLATE, rayjob, rendered, trigger, validate


def server_copy(template: kustomize.Resource) -> kustomize.Resource:
    """The template as `kubectl get -o json` returns it: with what the server and KubeRay wrote."""
    metadata = {
        **template["metadata"],
        "uid": "0c6a",
        "resourceVersion": "42",
        "creationTimestamp": "2026-12-02T19:00:00Z",
        "finalizers": ["ray.io/rayjob-finalizer"],
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
    }
    return {**template, "metadata": metadata, "status": {"jobDeploymentStatus": "Suspended"}}


def test_a_run_is_the_template_running_under_a_generated_name() -> None:
    template = rayjob(rendered())
    run = trigger.run_manifest(server_copy(template))
    validate(run)
    assert run["metadata"] == {
        "generateName": f"{TEMPLATE}-",
        "labels": {**template["metadata"]["labels"], trigger.RUN_OF_LABEL: TEMPLATE},
    }
    assert run["spec"] == {**template["spec"], "suspend": False}
    assert "status" not in run


def run_of(name: str, created: str, **status: str) -> kustomize.Resource:
    return {"metadata": {"name": name, "creationTimestamp": created}, "status": status}


def test_old_finished_runs_are_pruned_and_running_ones_kept() -> None:
    runs = [
        run_of("a", "2026-12-02T10:00:00Z", jobDeploymentStatus="Complete"),
        run_of("b", "2026-12-02T10:05:00Z", jobDeploymentStatus="Failed"),
        run_of("c", "2026-12-02T10:10:00Z", jobDeploymentStatus="Running"),
        run_of("d", "2026-12-02T10:15:00Z", jobDeploymentStatus="Complete"),
    ]
    assert trigger.runs_to_delete(runs, keep=1) == ["b", "a"]
    assert trigger.runs_to_delete(runs, keep=5) == []
    assert trigger.succeeded(run_of("x", "", jobDeploymentStatus="Complete", jobStatus="SUCCEEDED"))
    failed = run_of("x", "", jobDeploymentStatus="Complete", jobStatus="FAILED")
    assert not trigger.succeeded(failed)
    assert not trigger.succeeded(run_of("x", "", jobDeploymentStatus="Failed"))


# A stand-in for kubectl with the few commands trigger.py uses, over a JSON file of RayJobs. A
# created RayJob steps through the statuses listed in the file, one per `get`.
FAKE_KUBECTL = """
import json, os, sys
path = os.environ["FAKE_KUBE_STATE"]
state = json.load(open(path))
jobs = state["rayjobs"]
args = sys.argv[1:]
def save():
    json.dump(state, open(path, "w"))
if args[:2] == ["get", "rayjobs"]:
    key, value = args[3].split("=")
    items = [j for j in jobs.values() if j["metadata"].get("labels", {}).get(key) == value]
    print(json.dumps({"items": items}))
elif args[:2] == ["get", "rayjob"]:
    job = jobs[args[2]]
    steps = state["steps"].get(args[2], [])
    if steps:
        job["status"] = steps.pop(0)
        save()
    print(json.dumps(job))
elif args[0] == "create":
    job = json.loads(sys.stdin.read())
    name = job["metadata"]["generateName"] + "run%d" % len(state["created"])
    job["metadata"].update(name=name, creationTimestamp="2026-12-02T19:00:00Z")
    jobs[name] = job
    state["created"].append(name)
    state["steps"][name] = state.pop("next_steps")
    save()
    sys.stdout.write(name)
elif args[:2] == ["delete", "rayjob"]:
    del jobs[args[2]]
    state["deleted"].append(args[2])
    save()
else:
    sys.exit("unexpected: kubectl %s" % " ".join(args))
"""


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file of RayJobs holding the template, and a kubectl on PATH that serves it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(f"#!{sys.executable}\n{FAKE_KUBECTL}")
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IEXEC)
    state = tmp_path / "state.json"
    template = server_copy(rayjob(rendered()))
    write_state(state, {TEMPLATE: template}, created=[], deleted=[], steps={})
    monkeypatch.setenv("FAKE_KUBE_STATE", str(state))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return state


def write_state(path: Path, rayjobs: dict[str, kustomize.Resource], **rest: Any) -> None:
    path.write_text(json.dumps({"rayjobs": rayjobs, **rest}))


def read_state(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


RUNNING = {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}
SUCCEEDED = {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}


def test_the_trigger_starts_a_run_and_succeeds_with_it(cluster: Path) -> None:
    state = read_state(cluster)
    state["next_steps"] = [
        {"jobDeploymentStatus": "Initializing"},
        RUNNING,
        SUCCEEDED,
    ]
    cluster.write_text(json.dumps(state))
    assert trigger.main(["--poll-s", "0"]) == 0
    state = read_state(cluster)
    (name,) = state["created"]
    created = state["rayjobs"][name]
    validate({k: v for k, v in created.items() if k != "status"})
    assert created["spec"]["suspend"] is False
    assert state["rayjobs"][TEMPLATE]["spec"]["suspend"] is True


def test_the_trigger_fails_when_the_ray_job_failed(cluster: Path) -> None:
    state = read_state(cluster)
    state["next_steps"] = [{"jobDeploymentStatus": "Failed", "jobStatus": "FAILED"}]
    cluster.write_text(json.dumps(state))
    assert trigger.main(["--poll-s", "0"]) == trigger.RUN_FAILED


def test_a_retried_trigger_waits_for_the_run_it_left_and_prunes_old_ones(cluster: Path) -> None:
    state = read_state(cluster)
    label = {trigger.RUN_OF_LABEL: TEMPLATE}
    for name, created, status in (
        ("old", "2026-12-02T18:00:00Z", {"jobDeploymentStatus": "Complete"}),
        ("left", "2026-12-02T18:55:00Z", RUNNING),
    ):
        state["rayjobs"][name] = {
            "metadata": {"name": name, "labels": label, "creationTimestamp": created},
            "status": status,
        }
    state["steps"]["left"] = [RUNNING, SUCCEEDED]
    cluster.write_text(json.dumps(state))
    assert trigger.main(["--poll-s", "0", "--keep", "1"]) == 0
    state = read_state(cluster)
    assert state["created"] == [], "a run left by an earlier attempt is not doubled"
    assert state["deleted"] == ["old"]
    assert TEMPLATE in state["rayjobs"], "the template is never pruned"
