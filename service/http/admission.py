"""Load shedding: a bounded number of rank requests in flight, a bounded queue, and 429 past them.

Past its capacity a replica can only make every request slower; answering the excess at once
with ``429 Too Many Requests`` and ``Retry-After`` keeps the latency of the admitted ones and
tells callers (and their retry budgets) to back off or try another replica. A request waits in
the queue at most ``queue_timeout_s``: one that has waited longer would miss its caller's
deadline anyway, so it is shed too. The limits are per worker process.

A request is admitted only once its API key has been checked and its whole body has arrived
(:mod:`service.http.guards` orders the middleware so): a slot is held for the time a request
is scored, never for the time a slow or hostile client takes to send it. Where API keys are
configured, one key holds at most ``max_per_key`` slots and as many queue places, so a caller
that floods cannot take every slot from the others.
"""

from __future__ import annotations

import asyncio
import enum
import os
from collections import Counter as Tally
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import Counter, Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import Overloaded
from service.http.errors import error_response
from service.http.middleware import label_route

#: Who a request counts against: the digest of its API key, or ``None`` where keys are off.
Caller = Hashable | None
#: The scope entry where the key check leaves the request's :data:`Caller`.
CALLER_SCOPE_KEY = "reaseq.caller"

#: Rank requests in flight per scoring thread by default: about what one thread scores within
#: the latency objective as one batch (docs/DEPLOYMENT.md, capacity planning).
IN_FLIGHT_PER_SCORING_THREAD = 3
#: The default queue wait, as a share of the latency objective: an admitted request has spent
#: at most this much of its budget waiting. A tenth shed Poisson bursts from a quarter of a
#: replica's capacity on; half keeps the sustainable rate near that of unbounded queues while
#: the accepted p99 at three times capacity stays near the objective (docs/OPERATIONS.md).
QUEUE_TIMEOUT_SHARE_OF_OBJECTIVE = 0.5
_CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


class ShedReason(enum.StrEnum):
    QUEUE_FULL = "queue_full"
    QUEUE_TIMEOUT = "queue_timeout"
    KEY_LIMIT = "key_limit"


class Shed(Overloaded):
    """A request refused admission, with the reason it counts under."""

    def __init__(self, message: str, retry_after_s: int, reason: ShedReason) -> None:
        super().__init__(message, retry_after_s)
        self.reason = reason


@dataclass(frozen=True)
class AdmissionLimits:
    max_in_flight: int
    max_queued: int
    queue_timeout_s: float
    retry_after_s: int
    #: Slots, and queue places, one key may hold; ``None``: no limit per key.
    max_per_key: int | None = None


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, lowered by a cgroup CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    try:
        quota, period = _CGROUP_CPU_MAX.read_text().split()[:2]
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, int(int(quota) / int(period))))


def default_in_flight(scoring_threads: int, workers: int, cores: int) -> int:
    """A few requests per scoring thread that has a core of its own in this worker."""
    threads = min(scoring_threads, max(1, cores // workers))
    return IN_FLIGHT_PER_SCORING_THREAD * threads


def default_per_key(max_in_flight: int) -> int:
    """Every slot but a quarter of them (at least one), which stay for the other keys."""
    return max(1, max_in_flight - max(1, max_in_flight // 4))


class AdmissionControl:
    """At most ``max_in_flight`` holders, at most ``max_queued`` waiters in FIFO order; a
    caller over its ``max_per_key`` slots waits while later callers under theirs go first.

    Not bound to an event loop until a request waits, and then only through that request's
    future, so one instance serves whichever loop runs the app.
    """

    def __init__(
        self, limits: AdmissionLimits, in_flight: Gauge | None = None, queued: Gauge | None = None
    ) -> None:
        self.limits = limits
        self._held: Tally[Caller] = Tally()
        self._waiting: Tally[Caller] = Tally()
        self._waiters: deque[_Waiter] = deque()
        self._in_flight_gauge = in_flight
        self._queued_gauge = queued

    @property
    def in_flight(self) -> int:
        return self._held.total()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    async def acquire(self, caller: Caller = None) -> None:
        """Take a slot for ``caller``, waiting in the queue if need be; raises :class:`Shed`
        when refused."""
        # A slot is free only while no waiter may take it (release() hands slots over at
        # once), so taking it overtakes no one.
        if self.in_flight < self.limits.max_in_flight and self._may_hold(caller):
            self._take(caller)
            return
        self._check_queue(caller)
        waiter = _Waiter(caller, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        self._waiting[caller] += 1
        self._gauge(self._queued_gauge, +1)
        try:
            await asyncio.wait((waiter.future,), timeout=self.limits.queue_timeout_s)
        except BaseException:
            self._leave_queue(waiter)
            raise
        if not waiter.future.done():
            self._leave_queue(waiter)
            raise self._shed(
                ShedReason.QUEUE_TIMEOUT,
                f"{self.limits.max_in_flight} requests in flight and waited "
                f"{self.limits.queue_timeout_s * 1000:.0f} ms in the queue",
            )
        # release() handed a slot over and already took this waiter off the queue.

    def release(self, caller: Caller = None) -> None:
        """Give ``caller``'s slot back, or hand it to the longest waiter that may hold it."""
        self._held[caller] -= 1
        if self._held[caller] <= 0:
            del self._held[caller]
        self._gauge(self._in_flight_gauge, -1)
        for waiter in self._waiters:
            if self._may_hold(waiter.caller):
                self._unqueue(waiter)
                self._take(waiter.caller)
                waiter.future.set_result(None)
                return

    def _may_hold(self, caller: Caller) -> bool:
        per_key = self.limits.max_per_key
        return per_key is None or caller is None or self._held[caller] < per_key

    def _check_queue(self, caller: Caller) -> None:
        """Raise :class:`Shed` unless ``caller`` may wait: a free place in the queue, and one
        of its key's share of them. The key limit is the reason when the key's share is used
        up, or when only the key's share of the slots keeps it from a free one."""
        limits = self.limits
        per_key = limits.max_per_key
        own_places_used = (
            per_key is not None and caller is not None and self._waiting[caller] >= per_key
        )
        queue_full = len(self._waiters) >= limits.max_queued
        if own_places_used or (queue_full and self.in_flight < limits.max_in_flight):
            raise self._shed(
                ShedReason.KEY_LIMIT,
                f"this API key has {self._held[caller]} requests in flight and "
                f"{self._waiting[caller]} waiting, its share of at most {per_key} each",
            )
        if queue_full:
            raise self._shed(
                ShedReason.QUEUE_FULL,
                f"{limits.max_in_flight} requests in flight and the queue is full",
            )

    def _take(self, caller: Caller) -> None:
        self._held[caller] += 1
        self._gauge(self._in_flight_gauge, +1)

    def _unqueue(self, waiter: _Waiter) -> None:
        self._waiters.remove(waiter)
        self._waiting[waiter.caller] -= 1
        if self._waiting[waiter.caller] <= 0:
            del self._waiting[waiter.caller]
        self._gauge(self._queued_gauge, -1)

    def _leave_queue(self, waiter: _Waiter) -> None:
        if waiter.future.done() and not waiter.future.cancelled():
            # The slot was handed over as the wait ended: pass it on.
            self.release(waiter.caller)
            return
        waiter.future.cancel()
        if waiter in self._waiters:
            self._unqueue(waiter)

    def _shed(self, reason: ShedReason, why: str) -> Shed:
        retry_after_s = self.limits.retry_after_s
        return Shed(f"overloaded: {why}; retry after {retry_after_s} s", retry_after_s, reason)

    @staticmethod
    def _gauge(gauge: Gauge | None, change: int) -> None:
        if gauge is not None:
            gauge.inc(change)


@dataclass(eq=False)
class _Waiter:
    caller: Caller
    future: asyncio.Future[None]


class AdmissionMiddleware:
    """Admits ``POST`` requests to ``paths`` through an :class:`AdmissionControl`, as the
    caller the key check named; sheds the rest with 429 and ``Retry-After``. Other paths
    (health, metrics) are never held or shed."""

    def __init__(
        self,
        app: ASGIApp,
        control: AdmissionControl,
        paths: frozenset[str],
        shed: Counter | None = None,
    ) -> None:
        self.app = app
        self.control = control
        self.paths = paths
        self.shed = shed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not admitted(scope, self.paths):
            await self.app(scope, receive, send)
            return
        caller: Caller = scope.get(CALLER_SCOPE_KEY)
        try:
            await self.control.acquire(caller)
        except Shed as refused:
            if self.shed is not None:
                self.shed.labels(reason=refused.reason.value).inc()
            label_route(scope, self.paths)
            await error_response(refused)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.control.release(caller)


def admitted(scope: Scope, paths: frozenset[str]) -> bool:
    """Whether the request goes through the key check and admission: a POST to ``paths``."""
    return scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in paths
