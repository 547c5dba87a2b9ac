"""``python -m bench.ray_peer``: a local Ray with Serve on loopback, serving until SIGTERM/SIGINT.

Every Ray process (GCS, raylet and its agents, the workers of Serve's controller, proxies and
replicas, HAProxy) is started under this one, and shut down before it exits.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import threading
from pathlib import Path
from typing import Annotated

import typer

from bench.ray_peer import LOOPBACK, RAY_ENV, RayPeerSettings

_APP = "ranker"
_OBJECT_STORE_BYTES = 128 * 1024 * 1024  # requests travel by HTTP, never through the store
#: Serve's own shutdown is given this long before Ray is stopped under it (the bench waits 15 s).
_SERVE_SHUTDOWN_S = 8.0


def main(
    bundle_dir: Annotated[Path, typer.Option()],
    users: Annotated[Path, typer.Option()],
    port: Annotated[int, typer.Option()],
    max_batch_size: Annotated[int, typer.Option(min=1)] = 16,
    batch_wait_ms: Annotated[float, typer.Option(min=0.0)] = 5.0,
    replicas: Annotated[int, typer.Option(min=1)] = 1,
) -> None:
    settings = RayPeerSettings(max_batch_size, batch_wait_ms, replicas)
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-peer-"))
    try:
        _configure_environment(temp_dir)
        _serve(bundle_dir, users, port, settings, temp_dir)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


def _configure_environment(temp_dir: Path) -> None:
    """Ray's settings, before Ray is imported. HAProxy's files go under this run's folder (by
    default they sit at fixed /tmp paths, shared with any other Ray on the machine), its stats
    and metrics listeners on free ports (by default fixed ones). Short names: HAProxy's socket
    path, under a folder per node, has at most 97 characters."""
    for name, value in RAY_ENV.items():
        os.environ.setdefault(name, value)
    haproxy = temp_dir / "h"
    os.environ |= {
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(haproxy / "cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(haproxy / "sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(haproxy),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(haproxy / "state"),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(_free_port()),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(_free_port()),
    }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _serve(
    bundle_dir: Path, users: Path, port: int, settings: RayPeerSettings, temp_dir: Path
) -> None:
    import ray
    from ray import serve

    from bench.ray_peer.deployment import ranker_app

    ray.init(
        address="local",  # a new local Ray, never one found running on the machine
        num_cpus=max(os.cpu_count() or 1, settings.replicas),
        object_store_memory=_OBJECT_STORE_BYTES,
        include_dashboard=False,
        _node_ip_address=LOOPBACK,
        _temp_dir=str(temp_dir),
    )
    stop = threading.Event()
    # After ray.init, which installs a SIGTERM handler of its own.
    for received in (signal.SIGTERM, signal.SIGINT):
        signal.signal(received, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": LOOPBACK, "port": port})
        serve.run(ranker_app(bundle_dir, users, settings), name=_APP, route_prefix="/")
        print(f"ray serve peer ready on http://{LOOPBACK}:{port}", flush=True)
        stop.wait()
    finally:
        stopping = threading.Thread(target=serve.shutdown, daemon=True)
        stopping.start()
        stopping.join(_SERVE_SHUTDOWN_S)
        ray.shutdown()


if __name__ == "__main__":
    typer.run(main)
