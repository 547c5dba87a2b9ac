"""Which systems a bench run times: the service on the demo ranker, the service on the ranker with
the self-attention user encoder (when it was trained), the naive baseline and the Ray Serve peer
(when Ray Serve is installed)."""

from __future__ import annotations

from collections.abc import Callable

from bench.fixture import BenchFixture
from bench.ray_peer import BEST_SETTINGS, peer_available, ray_peer_command
from bench.run import baseline_command, service_command
from bench.systems import BASELINE, RAY_SERVE, SERVICE, SERVICE_SELF_ATTENTION, System

#: Where each system's ladder starts, per workload (requests per second).
SERVICE_START = {"W1": 20.0, "W2": 3.0}
BASELINE_START = {"W1": 5.0, "W2": 1.0}


def lineup(
    fixture: BenchFixture,
    self_attention: BenchFixture | None,
    workers: int,
    note: Callable[[str], object],
) -> list[System]:
    command, env = service_command(fixture, workers)
    systems = [
        System(
            SERVICE,
            "`reaseq serve` on the embedded store: micro-batching, per-user cache, onnxruntime "
            f"({workers} worker process{'es' if workers > 1 else ''}, defaults otherwise)",
            fixture,
            command,
            env,
            SERVICE_START,
            scrape=True,
            session=True,
        )
    ]
    if self_attention is not None:
        command, env = service_command(self_attention, workers)
        systems.append(
            System(
                SERVICE_SELF_ATTENTION,
                "the same service on the demo data's ranker with gated fusion and one causal "
                "self-attention layer in the user encoder (its own bundle)",
                self_attention,
                command,
                env,
                SERVICE_START,
                same_bundle=False,
                scrape=True,
                session=True,
            )
        )
    else:
        note("no self-attention ranker trained (var/demo/model_sa): that row is skipped")
    command, env = baseline_command(fixture)
    systems.append(
        System(
            BASELINE,
            "the same PyTorch checkpoint in eager mode behind a plain FastAPI endpoint, one "
            "forward per request, Python lookups (`bench/baseline.py`)",
            fixture,
            command,
            env,
            BASELINE_START,
        )
    )
    peer = ray_peer(fixture)
    if peer is None:
        note("Ray Serve is not installed (`pip install -e '.[peer]'`): the peer is skipped")
    else:
        systems.append(peer)
    return systems


def ray_peer(fixture: BenchFixture) -> System | None:
    if not peer_available():
        return None
    settings = BEST_SETTINGS
    command, env = ray_peer_command(fixture.bundle_dir, fixture.users_path, settings)
    return System(
        RAY_SERVE,
        "a Ray Serve deployment of the same bundle's graph with `@serve.batch` "
        "(`bench/ray_peer.py`, its best settings from a small search)",
        fixture,
        command,
        env,
        SERVICE_START,
        settings={
            "max_batch_size": settings.max_batch_size,
            "batch_wait_ms": settings.batch_wait_ms,
            "replicas": settings.replicas,
        },
    )
