"""Where the service's CPU time goes under load: py-spy samples of the live process, summed by
function (self time), idle waits left out."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.loadgen import offer

#: Leaf frames of a thread that waits (for work, a socket, a lock), not computes.
_IDLE = re.compile(
    r"(poll|select|epoll|Condition\.wait|Queue\.get|_worker \(concurrent|Runner\.run|"
    r"WorkerThread\.run|Event\.wait|Thread\._bootstrap|run_forever|_run_once|sleep)"
)
_LINE = re.compile(r":\d+\)$")


def py_spy() -> str | None:
    """The py-spy executable next to this Python, or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.is_file() else shutil.which("py-spy")


def profile_under_load(
    pid: int, url: str, bodies: list[bytes], rate_rps: float, duration_s: float, top: int = 15
) -> list[tuple[str, float]] | None:
    """The ``top`` functions by share of the busy samples while ``rate_rps`` is offered; None
    when py-spy is missing or may not attach (it needs ptrace rights)."""
    executable = py_spy()
    if executable is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "samples.txt"
        spy = subprocess.Popen(
            [executable, "record", "-p", str(pid), "-d", str(int(duration_s)), "-r", "200",
             "--format", "raw", "-o", str(out), "--nonblocking", "--subprocesses"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        asyncio.run(offer(f"{url}/v1/rank", bodies, rate_rps, duration_s + 1, seed=7))
        if spy.wait(timeout=60) != 0 or not out.is_file():
            return None
        return summarise_samples(out.read_text().splitlines(), top)


def summarise_samples(lines: list[str], top: int) -> list[tuple[str, float]]:
    """Self time per function (``name (file)``) over the non-idle samples of py-spy's raw
    (collapsed stack) output."""
    busy: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.split(";")[-1]
        if _IDLE.search(leaf):
            continue
        busy[_LINE.sub(")", leaf)] += int(count)
    total = sum(busy.values())
    return [(name, n / total) for name, n in busy.most_common(top)] if total else []
