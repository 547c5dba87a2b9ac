"""Load shedding: a bounded amount of rank work in flight, a bounded queue, and 429 past them.

Past its capacity a replica can only make every request slower; answering the excess with
``429 Too Many Requests`` and ``Retry-After`` keeps the latency of the admitted ones and tells
callers (and their retry budgets) to back off or try another replica. The limits are per worker
process.

Work in flight is counted in slots. A request holds one slot per ``slot_body_bytes`` of its body
(rounded, at least one, at most all of them): its body names its candidates and recent events,
which is what its scoring costs, so a replica admits several light requests where it admits one
heavy one, and the slots bound the work waiting for the scoring threads, not the number of
requests. A request's slots are taken together or not at all, and no request overtakes a
heavier one that waits before it.

The queue absorbs bursts and is served first come, first served while it copes. Where in the
last ``congestion_interval_s`` more requests arrived than completed by more than the slots and
the queue hold, the queue stands: the replica is past its capacity, and waiting only ages every
request. There the queue turns last in, first out, and a waiter may stay only
``congested_timeout_s`` (a full queue pushes out its oldest waiter instead of refusing the
newcomer): the requests admitted under overload are the fresh ones, served within the
objective, and the rest are shed quickly (the controlled delay and adaptive LIFO of Maurer,
"Fail at Scale", ACM Queue 2015). A standing queue also admits only up to
``congested_in_flight`` slots: below capacity more slots let the scoring threads batch what a
burst brings, but past it each slot taken only adds to the latency of the others. The queue
turns as soon as the current window's excess passes what the slots and the queue hold, so the
onset of an overload is not served with the full slots and queue waits. Otherwise a waiter may
stay ``queue_timeout_s``: one that has waited longer would miss its caller's deadline anyway.

A request is admitted only once its API key has been checked and its whole body has arrived
(:mod:`service.http.guards` orders the middleware so): a slot is held for the time a request
is scored, never for the time a slow or hostile client takes to send it. Where API keys are
configured, one key holds at most ``max_per_key`` slots and as many queue places, so a caller
that floods cannot take every slot from the others.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import Counter as Tally
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

from prometheus_client import Counter, Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import Overloaded
from service.http.body_limit import BODY_BYTES_SCOPE_KEY
from service.http.errors import error_response
from service.http.middleware import label_route

#: Who a request counts against: the digest of its API key, or ``None`` where keys are off.
Caller = Hashable | None
#: The scope entry where the key check leaves the request's :data:`Caller`.
CALLER_SCOPE_KEY = "reaseq.caller"

#: Admission slots per scoring thread by default: about the work one thread scores within the
#: latency objective, three requests of 2000 candidates or nine of 500 (docs/OPERATIONS.md).
IN_FLIGHT_PER_SCORING_THREAD = 9
#: Queue places per slot by default: room for a Poisson burst; the queue's time limits, not its
#: length, bound what a waiter loses.
QUEUED_PER_SLOT = 4
#: The default queue wait, as a share of the latency objective: an admitted request has spent
#: at most this much of its budget waiting. A tenth shed Poisson bursts from a quarter of a
#: replica's capacity on; half keeps the sustainable rate near that of unbounded queues
#: (docs/OPERATIONS.md).
QUEUE_TIMEOUT_SHARE_OF_OBJECTIVE = 0.5
#: The wait allowed in a standing queue, as a share of the objective: a tenth, so that what
#: is admitted under overload has nearly its whole budget left.
CONGESTED_TIMEOUT_SHARE_OF_OBJECTIVE = 0.1
#: The slots a standing queue admits up to, as a share of the slots: a third, three requests of
#: 500 candidates with the default slots, as many as the tight limits of the overload benchmark
#: (``make bench``) admit; with all nine held past capacity each admitted request waits behind
#: eight others.
CONGESTED_SHARE_OF_SLOTS = 1 / 3
#: The window over which arrivals and completions are counted, in latency objectives: five,
#: long enough that a Poisson burst below capacity does not look like overload.
CONGESTION_INTERVAL_OBJECTIVES = 5.0


class ShedReason(enum.StrEnum):
    QUEUE_FULL = "queue_full"
    QUEUE_TIMEOUT = "queue_timeout"
    #: Let go from a standing queue: past its short wait, or pushed out by a newer request.
    QUEUE_STANDING = "queue_standing"
    KEY_LIMIT = "key_limit"


class Shed(Overloaded):
    """A request refused admission, with the reason it counts under."""

    def __init__(self, message: str, retry_after_s: int, reason: ShedReason) -> None:
        super().__init__(message, retry_after_s)
        self.reason = reason


@dataclass(frozen=True)
class AdmissionLimits:
    #: Slots; a request holds at least one.
    max_in_flight: int
    #: Requests waiting for slots.
    max_queued: int
    queue_timeout_s: float
    retry_after_s: int
    #: Slots, and queue places, one key may hold; ``None``: no limit per key.
    max_per_key: int | None = None
    #: The longest wait in a standing queue; ``None``: ``queue_timeout_s`` (and first come,
    #: first served throughout).
    congested_timeout_s: float | None = None
    #: The window over which arrivals and completions are counted.
    congestion_interval_s: float = 0.25
    #: Body bytes per slot a request holds; ``None``: one slot per request, whatever its body.
    slot_body_bytes: int | None = None
    #: The slots admitted while the queue stands; ``None``: ``max_in_flight``.
    congested_in_flight: int | None = None

    def slots_for(self, body_bytes: int | None) -> int:
        """The slots a request with a body of ``body_bytes`` asks for: one per
        ``slot_body_bytes``, rounded, at least one (:meth:`AdmissionControl.clamp` cuts them to
        what can be held)."""
        if self.slot_body_bytes is None or body_bytes is None:
            return 1
        return max(1, (body_bytes + self.slot_body_bytes // 2) // self.slot_body_bytes)


def default_in_flight(scoring_threads: int, workers: int, cores: int) -> int:
    """A few requests per scoring thread that has a core of its own in this worker."""
    threads = min(scoring_threads, max(1, cores // workers))
    return IN_FLIGHT_PER_SCORING_THREAD * threads


def default_congested_in_flight(max_in_flight: int) -> int:
    """A third of the slots, at least two (so that one API key's share leaves one for the
    others) and at most all of them: what a standing queue admits up to."""
    return min(max_in_flight, max(2, round(max_in_flight * CONGESTED_SHARE_OF_SLOTS)))


def default_per_key(max_in_flight: int) -> int:
    """Every slot but a quarter of them (at least one), which stay for the other keys."""
    return max(1, max_in_flight - max(1, max_in_flight // 4))


class AdmissionControl:
    """At most ``max_in_flight`` slots held and ``max_queued`` waiters; the queue first come,
    first served until it stands, then last in, first out with a short wait (see the module).
    A waiter whose slots are not free holds up those after it (none overtakes it), except that
    a caller over its ``max_per_key`` slots waits while other callers under theirs go first.

    Not bound to an event loop until a request waits, and then only through that request's
    future, so one instance serves whichever loop runs the app.
    """

    def __init__(
        self,
        limits: AdmissionLimits,
        in_flight: Gauge | None = None,
        queued: Gauge | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self._held: Tally[Caller] = Tally()
        self._waiting: Tally[Caller] = Tally()
        self._waiters: deque[_Waiter] = deque()
        self._in_flight_gauge = in_flight
        self._queued_gauge = queued
        self._clock = clock
        #: Requests that asked for a slot, and slots given back, in the current window.
        self._window_start = clock()
        self._arrived = 0
        self._completed = 0
        #: Whether the last whole window saw more arrive, beyond what completed, than the
        #: slots and the queue hold.
        self._standing = False

    @property
    def in_flight(self) -> int:
        """Slots held."""
        return self._held.total()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def congested(self) -> bool:
        """Whether the queue stands (with the controlled delay configured): in the last whole
        window of ``congestion_interval_s`` (or already in the current one), more requests
        arrived than completed by more than the slots and the queue hold, so some had to be
        shed whatever the order. Arrivals and completions do not depend on how the queue is
        served, so serving it newest first does not keep it standing; a burst the queue
        absorbs does not turn it."""
        if self.limits.congested_timeout_s is None:
            return False
        now = self._clock()
        held = self.limits.max_in_flight + self.limits.max_queued
        over = self._arrived - self._completed > held
        if now - self._window_start >= self.limits.congestion_interval_s:
            self._standing = over
            self._window_start, self._arrived, self._completed = now, 0, 0
        elif over:
            # Past what the slots and the queue hold, the window stands whatever the rest of
            # it brings: no need to wait for its end.
            self._standing = True
        return self._standing

    def clamp(self, caller: Caller, slots: int) -> int:
        """``slots`` cut to what ``caller`` may ever hold: the slots, and its key's share."""
        slots = max(1, min(slots, self.limits.max_in_flight))
        per_key = self.limits.max_per_key
        if per_key is not None and caller is not None:
            slots = min(slots, per_key)
        return slots

    async def acquire(self, caller: Caller = None, slots: int = 1) -> None:
        """Take ``slots`` (see :meth:`clamp`) for ``caller``, waiting in the queue if need be;
        raises :class:`Shed` when refused. Give them back with :meth:`release` and the same
        ``slots``."""
        slots = self.clamp(caller, slots)
        self._arrived += 1
        # Free slots with a waiter that its key's share does not hold back: it needs more than
        # are free, and taking them would overtake it.
        if self._fits(caller, slots) and not self._any_may_hold():
            self._take(caller, slots)
            return
        congested = self.congested()
        if congested:
            self._expire_stale()
        self._check_queue(caller, slots, congested)
        waiter = _Waiter(caller, slots, asyncio.get_running_loop().create_future(), self._clock())
        self._waiters.append(waiter)
        self._waiting[caller] += 1
        self._gauge(self._queued_gauge, +1)
        # Those before it may all be held back by their keys' shares.
        self._hand_over(congested)
        timeout_s = self.limits.queue_timeout_s
        if congested and self.limits.congested_timeout_s is not None:
            timeout_s = self.limits.congested_timeout_s
        try:
            await asyncio.wait((waiter.future,), timeout=timeout_s)
        except BaseException:
            self._leave_queue(waiter)
            raise
        if not waiter.future.done():
            self._leave_queue(waiter)
            raise self._shed(
                ShedReason.QUEUE_TIMEOUT,
                f"{self.in_flight} of {self.limits.max_in_flight} slots in flight and waited "
                f"{timeout_s * 1000:.0f} ms in the queue",
            )
        if not waiter.future.result():
            # Let go from a standing queue; already off it.
            raise self._shed(
                ShedReason.QUEUE_STANDING,
                f"{self.in_flight} of {self.limits.max_in_flight} slots in flight and more "
                "arriving than completing; under sustained overload the newest requests go "
                "first",
            )
        # release() handed the slots over and already took this waiter off the queue.

    def release(self, caller: Caller = None, slots: int = 1) -> None:
        """Give back ``caller``'s ``slots`` (as acquired), and hand free slots to the waiters
        in turn that may hold them: the longest waiting, or the newest in a standing queue."""
        slots = self.clamp(caller, slots)
        self._held[caller] -= slots
        if self._held[caller] <= 0:
            del self._held[caller]
        self._gauge(self._in_flight_gauge, -slots)
        self._completed += 1
        self._hand_over(self.congested())

    def _hand_over(self, congested: bool) -> None:
        """Give free slots to the waiters in turn that may hold them, until the next one needs
        more than are free (it is not overtaken)."""
        turn: Iterable[_Waiter] = self._waiters
        if congested:
            self._expire_stale()
            turn = reversed(self._waiters)
        for waiter in list(turn):
            if not self._may_hold(waiter.caller, waiter.slots):
                continue
            if not self._fits(None, waiter.slots):
                return
            self._unqueue(waiter)
            self._take(waiter.caller, waiter.slots)
            waiter.future.set_result(True)

    def _congested_slots(self) -> int | None:
        """The slots admitted while the queue stands; ``None`` while it does not."""
        return self.limits.congested_in_flight if self._standing else None

    def _fits(self, caller: Caller, slots: int) -> bool:
        """Whether ``slots`` are free and ``caller`` may hold them. While the queue stands,
        only ``congested_in_flight`` slots are (a request finding none held takes its slots
        whatever its size, so none waits for ever)."""
        congested = self._congested_slots()
        if congested is not None:
            free = self.in_flight == 0 or self.in_flight + slots <= congested
        else:
            free = self.in_flight + slots <= self.limits.max_in_flight
        return free and self._may_hold(caller, slots)

    def _any_may_hold(self) -> bool:
        """Whether a waiter waits that its key's share does not hold back."""
        if self.limits.max_per_key is None:
            return bool(self._waiters)
        return any(self._may_hold(w.caller, w.slots) for w in self._waiters)

    def _may_hold(self, caller: Caller, slots: int = 1) -> bool:
        """Whether ``caller``'s key's share leaves room for ``slots`` more. While the queue
        stands the share is of the slots then admitted (a key holding none may take one
        request's), so one key cannot take them all from the others."""
        per_key = self.limits.max_per_key
        if per_key is None or caller is None:
            return True
        held = self._held[caller]
        congested = self._congested_slots()
        if congested is not None:
            return held == 0 or held + slots <= min(per_key, default_per_key(congested))
        return held + slots <= per_key

    def _check_queue(self, caller: Caller, slots: int, congested: bool) -> None:
        """Raise :class:`Shed` unless ``caller`` may wait: a free place in the queue (in a
        standing queue, the oldest waiter gives up its place), and one of its key's share of
        them. The key limit is the reason when the key's share is used up, or when only the
        key's share of the slots keeps it from free ones. Free counts against all the slots,
        also while the queue stands: a key past its share of the slots a standing queue admits
        is refused for that share, so what a flooding key loses is counted against its key."""
        limits = self.limits
        per_key = limits.max_per_key
        own_places_used = (
            per_key is not None and caller is not None and self._waiting[caller] >= per_key
        )
        queue_full = len(self._waiters) >= limits.max_queued
        key_held_back = self.in_flight + slots <= limits.max_in_flight and not self._may_hold(
            caller, slots
        )
        if own_places_used or (queue_full and key_held_back):
            raise self._shed(
                ShedReason.KEY_LIMIT,
                f"this API key holds {self._held[caller]} slots and has "
                f"{self._waiting[caller]} requests waiting, its share of at most {per_key} "
                "each",
            )
        if queue_full and congested and self._waiters:
            self._let_go(self._waiters[0])
        elif queue_full:
            raise self._shed(
                ShedReason.QUEUE_FULL,
                f"{self.in_flight} of {limits.max_in_flight} slots in flight and the queue is full",
            )

    def _expire_stale(self) -> None:
        """Let go every waiter that has waited longer than a standing queue allows."""
        limit_s = self.limits.congested_timeout_s
        if limit_s is None:
            return
        cutoff = self._clock() - limit_s
        while self._waiters and self._waiters[0].since < cutoff:
            self._let_go(self._waiters[0])

    def _let_go(self, waiter: _Waiter) -> None:
        """Take ``waiter`` off the queue without a slot: it is shed as timed out."""
        self._unqueue(waiter)
        waiter.future.set_result(False)

    def _take(self, caller: Caller, slots: int) -> None:
        self._held[caller] += slots
        self._gauge(self._in_flight_gauge, +slots)

    def _unqueue(self, waiter: _Waiter) -> None:
        self._waiters.remove(waiter)
        self._waiting[waiter.caller] -= 1
        if self._waiting[waiter.caller] <= 0:
            del self._waiting[waiter.caller]
        self._gauge(self._queued_gauge, -1)

    def _leave_queue(self, waiter: _Waiter) -> None:
        if waiter.future.done() and not waiter.future.cancelled():
            if waiter.future.result():
                # The slots were handed over as the wait ended: pass them on.
                self.release(waiter.caller, waiter.slots)
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
    slots: int
    #: True: handed a slot; False: let go from a standing queue.
    future: asyncio.Future[bool]
    since: float


class AdmissionMiddleware:
    """Admits ``POST`` requests to ``paths`` through an :class:`AdmissionControl`, as the
    caller the key check named and with the slots their bodies' size asks for (the body limit
    leaves it in the scope); sheds the rest with 429 and ``Retry-After``. Other paths (health,
    metrics) are never held or shed."""

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
        slots = self.control.limits.slots_for(scope.get(BODY_BYTES_SCOPE_KEY))
        try:
            await self.control.acquire(caller, slots)
        except Shed as refused:
            if self.shed is not None:
                self.shed.labels(reason=refused.reason.value).inc()
            label_route(scope, self.paths)
            await error_response(refused)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.control.release(caller, slots)


def admitted(scope: Scope, paths: frozenset[str]) -> bool:
    """Whether the request goes through the key check and admission: a POST to ``paths``."""
    return scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in paths
