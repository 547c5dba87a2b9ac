"""The Ray session the pipelines run in, and how large their worker pools are.

``ray.init()`` without an address connects to the cluster ``RAY_ADDRESS`` names (a KubeRay RayJob
sets it for its driver) and otherwise starts a local Ray on this machine; an explicit address
wins. ``num_cpus`` only applies to a local Ray: a cluster has the resources it was started with.
This module is where the pipelines read ``RAY_ADDRESS``.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import ray

ADDRESS_VARIABLE = "RAY_ADDRESS"


class RayUnavailable(RuntimeError):
    """Ray could not be started here, or the cluster named could not be reached."""


@dataclass(frozen=True)
class RayOptions:
    """Where the pipelines run: a cluster's address (``ray://…`` or ``host:port``), else
    ``RAY_ADDRESS``, else a local Ray with ``num_cpus`` CPUs (default: all of them)."""

    address: str | None = None
    num_cpus: int | None = None

    def cluster_address(self) -> str | None:
        return self.address or os.environ.get(ADDRESS_VARIABLE) or None


@dataclass(frozen=True)
class WorkerPool:
    """How a stage spreads over the cluster.

    ``workers`` is the number of actors (or tasks in flight) of a stage, by default one per CPU
    of the cluster, or per ``gpus_per_worker`` share of its GPUs when that is set. ``shard_rows``
    is how many rows (users, items) one call handles.
    """

    workers: int | None = None
    shard_rows: int = 4096
    gpus_per_worker: float = 0.0

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ValueError("workers must be positive")
        if self.shard_rows < 1:
            raise ValueError("shard_rows must be positive")
        if self.gpus_per_worker < 0:
            raise ValueError("gpus_per_worker must be >= 0")

    def size(self, shards: int | None = None) -> int:
        """The pool size: ``workers``, else what the cluster's resources hold; no more than
        ``shards`` (a worker with no shard to take would only cost its start)."""
        if self.workers is not None:
            size = self.workers
        elif self.gpus_per_worker > 0:
            size = int(ray.cluster_resources().get("GPU", 0) / self.gpus_per_worker)
        else:
            size = int(ray.cluster_resources().get("CPU", 1))
        return max(1, size if shards is None else min(size, shards))


@contextmanager
def ray_session(options: RayOptions | None = None) -> Iterator[None]:
    """Run the block connected to Ray; a session the caller already holds is used as it is (and
    left running), one started here is shut down after."""
    if ray.is_initialized():
        yield
        return
    options = options or RayOptions()
    address = options.cluster_address()
    if address:
        _check_listening(address)
    try:
        ray.init(
            address=address,
            num_cpus=None if address else options.num_cpus,
            include_dashboard=False,
            logging_level=logging.WARNING,
        )
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise RayUnavailable(f"cannot start or reach {where}: {error}") from error
    try:
        yield
    finally:
        ray.shutdown()


def _check_listening(address: str, timeout_s: float = 10.0) -> None:
    """Fail now, in one line, when nothing listens at a cluster's ``host:port`` (``ray.init``
    would retry for minutes); other forms (``auto``) are left to Ray."""
    host, _, port = address.rpartition("://")[2].rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise RayUnavailable(f"cannot reach the Ray cluster at {address}: {error}") from None
