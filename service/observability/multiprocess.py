"""Metrics of several worker processes sharing one ``PROMETHEUS_MULTIPROC_DIR``: which workers
are alive, the ``process_*`` metrics of each, and the files of the dead ones."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import ProcessCollector
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import mark_process_dead
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w+_(\d+)\.db$")


class WorkerProcessCollector(Collector):
    """The ``process_*`` metrics of every live worker sharing ``multiprocess_dir`` (and of this
    one), each labelled with its ``pid``, read from ``/proc`` at scrape time."""

    def __init__(self, multiprocess_dir: Path) -> None:
        self._dir = multiprocess_dir

    def collect(self) -> Iterable[Metric]:
        merged: dict[str, Metric] = {}
        for pid in sorted(worker_pids(self._dir) | {os.getpid()}):
            # A worker that exits meanwhile yields nothing (its /proc entry is gone).
            process = ProcessCollector(pid=_constant(pid), registry=None)
            for family in process.collect():
                metric = merged.setdefault(
                    family.name,
                    Metric(family.name, family.documentation, family.type, family.unit),
                )
                for sample in family.samples:
                    metric.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        return list(merged.values())


def _constant(pid: int) -> Callable[[], int]:
    return lambda: pid


def worker_pids(multiprocess_dir: Path) -> set[int]:
    """Processes with live-merged gauge files in the directory."""
    pids = set()
    for name in os.listdir(multiprocess_dir):
        match = _LIVE_GAUGE_FILE.match(name)
        if match:
            pids.add(int(match.group(1)))
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed worker stays a zombie until its supervisor reaps it: dead all the same.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def reap_dead_workers(multiprocess_dir: Path) -> list[int]:
    """Mark workers that died without saying so (killed, crashed) dead; returns their pids.

    gunicorn does this in its ``child_exit`` hook; uvicorn's supervisor has none, so the
    workers do it themselves at each scrape.
    """
    dead = [pid for pid in worker_pids(multiprocess_dir) if not _alive(pid)]
    for pid in dead:
        mark_process_dead(pid, str(multiprocess_dir))
        log.info("marked metrics of dead worker %d", pid)
    return dead


def clear_multiprocess_dir(multiprocess_dir: Path) -> None:
    """Empty the directory before workers start: files of a previous run would be counted."""
    multiprocess_dir.mkdir(parents=True, exist_ok=True)
    for path in multiprocess_dir.glob("*.db"):
        path.unlink()
