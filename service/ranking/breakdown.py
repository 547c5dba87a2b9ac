"""Where one rank request's time went inside the server, sent back as a ``Server-Timing`` header
(W3C Server Timing) so that a load generator can explain its slow answers request by request:
the fetch from the store, the wait for a scoring batch, the batch's model time in the scoring
thread (with that thread's CPU time), the hand-offs between it and the event loop, and the
garbage collection pauses and event-loop lag the process suffered while the request was in it
(those two overlap the others: they say what the others were slowed by)."""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field

from service.observability.pauses import PAUSES


@dataclass(slots=True)
class RequestBreakdown:
    started: float = field(default_factory=time.perf_counter)
    fetch_ms: float = 0.0
    #: From joining the scoring queue to its batch starting.
    batch_wait_ms: float = 0.0
    #: The whole batch's scoring time (shared with the other requests in it), from the event
    #: loop's side: the scoring thread's work and the hand-offs to it and back.
    batch_ms: float = 0.0
    batch_requests: int = 0
    #: Of ``batch_ms``, the scoring thread's own wall time and its CPU time meanwhile: where
    #: the first passes the second by much, the thread waited (for a core or the GIL).
    scored_ms: float = 0.0
    scored_cpu_ms: float = 0.0
    gc_before_ms: float = field(default_factory=lambda: PAUSES.gc_ms)
    lag_before_ms: float = field(default_factory=lambda: PAUSES.loop_lag_ms)

    def header(self) -> str:
        """The ``Server-Timing`` value: durations in milliseconds, ``server`` the whole time
        since the route took the validated request."""
        server = 1000.0 * (time.perf_counter() - self.started)
        parts = {
            "fetch": self.fetch_ms,
            "wait": self.batch_wait_ms,
            "model": self.scored_ms,
            "handoff": max(0.0, self.batch_ms - self.scored_ms),
            "model_cpu": self.scored_cpu_ms,
            "gc": PAUSES.gc_ms - self.gc_before_ms,
            "lag": PAUSES.loop_lag_ms - self.lag_before_ms,
            "server": server,
        }
        timings = ", ".join(f"{name};dur={value:.3f}" for name, value in parts.items())
        return f"{timings}, batch;desc={self.batch_requests}"


current_breakdown: ContextVar[RequestBreakdown | None] = ContextVar(
    "current_breakdown", default=None
)
