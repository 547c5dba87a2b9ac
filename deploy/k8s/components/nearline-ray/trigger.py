"""One scheduled run of the nearline generation on KubeRay; the CronJob reaseq-nearline runs it.

The RayJob named by ``--template`` is suspended, so KubeRay creates nothing for it. A run copies it
into a RayJob that is not suspended, under a generated name and labelled with the template's name,
waits until KubeRay reports the copy finished, and exits 0 when the Ray job succeeded or
``RUN_FAILED`` when it did not. The CronJob forbids concurrent Jobs and this process lasts as long
as the RayJob, so two runs never overlap and the state file of incremental runs has one writer. A
copy left unfinished by an earlier pod of the same Job (evicted, its node lost) is waited for, not
doubled. Finished copies beyond the newest ``--keep`` are deleted (KubeRay has already deleted
their Ray clusters).

Standard library and kubectl only; kubectl finds the pod's service account and namespace itself.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

RayJob = dict[str, Any]

#: Exit status of a run whose Ray job did not succeed. The CronJob's podFailurePolicy fails the
#: Job on it without a retry, since the RayJob has had its own (spec.backoffLimit); any other
#: failure (an API error, an evicted pod) is retried by the Job, and the retry adopts the run.
RUN_FAILED = 3
#: The label that marks a run, valued with the name of the template it was copied from.
RUN_OF_LABEL = "reaseq/nearline-run-of"
#: KubeRay's terminal deployment states (rayv1.IsJobDeploymentTerminal).
FINISHED = frozenset({"Complete", "Failed"})


def run_manifest(template: RayJob) -> RayJob:
    """A run of the template: its labels and spec, not suspended, under a generated name.

    Built afresh instead of edited, so nothing the server wrote (status, uid, resourceVersion,
    KubeRay's finalizer) is carried over."""
    name = template["metadata"]["name"]
    labels = {**template["metadata"].get("labels", {}), RUN_OF_LABEL: name}
    return {
        "apiVersion": template["apiVersion"],
        "kind": template["kind"],
        "metadata": {"generateName": f"{name}-", "labels": labels},
        "spec": {**template["spec"], "suspend": False},
    }


def deployment_status(rayjob: RayJob) -> str:
    return str(rayjob.get("status", {}).get("jobDeploymentStatus", ""))


def is_finished(rayjob: RayJob) -> bool:
    return deployment_status(rayjob) in FINISHED


def succeeded(rayjob: RayJob) -> bool:
    status = rayjob.get("status", {})
    complete = status.get("jobDeploymentStatus") == "Complete"
    return complete and status.get("jobStatus") == "SUCCEEDED"


def runs_to_delete(runs: Sequence[RayJob], keep: int) -> list[str]:
    """The finished runs older than the newest ``keep`` finished ones; unfinished runs stay."""
    finished = sorted(
        (run for run in runs if is_finished(run)),
        key=lambda run: str(run["metadata"]["creationTimestamp"]),  # RFC 3339 sorts as text
        reverse=True,
    )
    return [run["metadata"]["name"] for run in finished[keep:]]


def kubectl(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["kubectl", *args], input=stdin, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def get(*args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json"))


def log(message: str) -> None:
    print(message, flush=True)


def start_or_adopt(template_name: str) -> str:
    """The name of the unfinished run if an earlier attempt left one, else of a new run."""
    runs = get("rayjobs", "-l", f"{RUN_OF_LABEL}={template_name}")["items"]
    unfinished = sorted(
        (run for run in runs if not is_finished(run)),
        key=lambda run: str(run["metadata"]["creationTimestamp"]),
    )
    if unfinished:
        name = str(unfinished[0]["metadata"]["name"])
        log(f"rayjob/{name} is still running from an earlier attempt: waiting for it")
        return name
    manifest = run_manifest(get("rayjob", template_name))
    name = kubectl(
        "create", "-f", "-", "-o", "jsonpath={.metadata.name}", stdin=json.dumps(manifest)
    )
    log(f"created rayjob/{name} from rayjob/{template_name}")
    return name


def wait(name: str, poll_s: float) -> RayJob:
    """The RayJob once KubeRay reports it finished; logs every change of its state."""
    seen: tuple[str, str] | None = None
    while True:
        rayjob: RayJob = get("rayjob", name)
        status = rayjob.get("status", {})
        state = (deployment_status(rayjob), str(status.get("jobStatus", "")))
        if state != seen:
            log(f"rayjob/{name}: deployment {state[0] or 'New'}, Ray job {state[1] or '-'}")
            seen = state
        if is_finished(rayjob):
            return rayjob
        time.sleep(poll_s)


def prune(template_name: str, keep: int) -> None:
    """Delete old finished runs; a failure here is logged, never the run's outcome."""
    try:
        runs = get("rayjobs", "-l", f"{RUN_OF_LABEL}={template_name}")["items"]
        for name in runs_to_delete(runs, keep):
            kubectl("delete", "rayjob", name, "--wait=false")
            log(f"deleted rayjob/{name}")
    except RuntimeError as error:
        log(f"pruning old runs failed: {error}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start one nearline RayJob and wait for it.")
    parser.add_argument("--template", default="reaseq-nearline", help="The suspended RayJob.")
    parser.add_argument("--keep", type=int, default=5, help="Finished runs kept for their logs.")
    parser.add_argument("--poll-s", type=float, default=10.0, help="Seconds between checks.")
    args = parser.parse_args(argv)
    name = start_or_adopt(args.template)
    rayjob = wait(name, args.poll_s)
    prune(args.template, args.keep)
    if succeeded(rayjob):
        return 0
    status = rayjob.get("status", {})
    log(f"rayjob/{name} did not succeed: {status.get('reason', '')} {status.get('message', '')}")
    return RUN_FAILED


if __name__ == "__main__":
    sys.exit(main())
