"""Load shedding: a bounded number of rank requests in flight, a bounded queue, and 429 past them.

Past its capacity a replica can only make every request slower; answering the excess at once
with ``429 Too Many Requests`` and ``Retry-After`` keeps the latency of the admitted ones and
tells callers (and their retry budgets) to back off or try another replica. A request waits in
the queue at most ``queue_timeout_s``: one that has waited longer would miss its caller's
deadline anyway, so it is shed too. Admission happens before the body is read, so a shed
request costs almost nothing. The limits are per worker process.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from dataclasses import dataclass

from prometheus_client import Counter, Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import Overloaded
from service.http.errors import error_response
from service.http.middleware import label_route


class ShedReason(enum.StrEnum):
    QUEUE_FULL = "queue_full"
    QUEUE_TIMEOUT = "queue_timeout"


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


class AdmissionControl:
    """At most ``max_in_flight`` holders, at most ``max_queued`` waiters in FIFO order.

    Not bound to an event loop until a request waits, and then only through that request's
    future, so one instance serves whichever loop runs the app.
    """

    def __init__(
        self, limits: AdmissionLimits, in_flight: Gauge | None = None, queued: Gauge | None = None
    ) -> None:
        self.limits = limits
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._in_flight_gauge = in_flight
        self._queued_gauge = queued

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def queued(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> None:
        """Take a slot, waiting in the queue if need be; raises :class:`Shed` when refused."""
        if self._in_flight < self.limits.max_in_flight and not self._waiters:
            self._take()
            return
        if len(self._waiters) >= self.limits.max_queued:
            raise self._shed(ShedReason.QUEUE_FULL, "the queue is full")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._gauge(self._queued_gauge, +1)
        try:
            await asyncio.wait((waiter,), timeout=self.limits.queue_timeout_s)
        except BaseException:
            self._leave_queue(waiter)
            raise
        if not waiter.done():
            self._leave_queue(waiter)
            raise self._shed(
                ShedReason.QUEUE_TIMEOUT,
                f"waited {self.limits.queue_timeout_s * 1000:.0f} ms in the queue",
            )
        # release() handed its slot over and already took this waiter off the queue.

    def release(self) -> None:
        """Give the slot back, or hand it straight to the longest waiter."""
        while self._waiters:
            waiter = self._waiters.popleft()
            self._gauge(self._queued_gauge, -1)
            if not waiter.done():
                waiter.set_result(None)
                return
        self._in_flight -= 1
        self._gauge(self._in_flight_gauge, -1)

    def _take(self) -> None:
        self._in_flight += 1
        self._gauge(self._in_flight_gauge, +1)

    def _leave_queue(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done() and not waiter.cancelled():
            # The slot was handed over as the wait ended: pass it on.
            self.release()
            return
        waiter.cancel()
        if waiter in self._waiters:
            self._waiters.remove(waiter)
            self._gauge(self._queued_gauge, -1)

    def _shed(self, reason: ShedReason, why: str) -> Shed:
        limits = self.limits
        return Shed(
            f"overloaded: {limits.max_in_flight} requests in flight and {why}; "
            f"retry after {limits.retry_after_s} s",
            limits.retry_after_s,
            reason,
        )

    @staticmethod
    def _gauge(gauge: Gauge | None, change: int) -> None:
        if gauge is not None:
            gauge.inc(change)


class AdmissionMiddleware:
    """Admits requests to ``paths`` through an :class:`AdmissionControl`; sheds the rest with
    429 and ``Retry-After``. Other paths (health, metrics) are never held or shed."""

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
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        try:
            await self.control.acquire()
        except Shed as refused:
            if self.shed is not None:
                self.shed.labels(reason=refused.reason.value).inc()
            label_route(scope, self.paths)
            await error_response(refused)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.control.release()
