"""The HTTP server's connections: at most so many open, and a time and a size limit on request
headers.

uvicorn keeps a connection for as long as its client holds it open with a request's headers
unfinished: its keep-alive timeout runs only between requests, and its ``limit_concurrency``
acts only once headers are complete, answering 503 to every request, health checks included.
Clients that open connections and never finish their headers hold a file descriptor each, until
the process has none left and even ``/livez`` fails. Here a connection whose headers have not
arrived within ``header_timeout_s`` of its opening (or of the first byte of a later request on
it) is closed, and a worker keeps at most ``max_open`` connections: at the cap a new connection
closes the one that has been idle or waiting for its headers the longest, or is refused when
every connection is busy with a request. A request in progress is never cut here; the body
limit bounds how long its body may take.

httptools, uvicorn's parser, has no limit on the size of request headers either: it buffers a
header field until its end arrives, and uvicorn hands a request of any header size to the app.
A request whose request line and header fields pass ``max_header_bytes`` is answered 431
``headers_too_large`` and its connection closed, before the app sees it.

:mod:`service.http.uvicorn_protocol` applies a :class:`ConnectionGuard` to uvicorn's connections.
"""

from __future__ import annotations

import enum
import logging
import math
import resource
import time
from collections import Counter as Tally
from typing import Protocol

from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)

#: Where the lifespan state holds the worker's :class:`ConnectionGuard`.
GUARD_STATE_KEY = "connection_guard"
#: File descriptors a worker keeps for everything but client connections: the bundle's files,
#: store connections, metric files, logs.
OPEN_FILES_RESERVE = 256
#: Dropped connections are logged at most once per this many seconds, with their counts.
DROP_LOG_INTERVAL_S = 10.0


class DropReason(enum.StrEnum):
    HEADER_TIMEOUT = "header_timeout"
    HEADERS_TOO_LARGE = "headers_too_large"
    EVICTED = "evicted"
    REFUSED = "refused"


class Droppable(Protocol):
    def drop(self) -> None:
        """Close the connection now."""


class ConnectionGuard:
    """The open connections of one worker, those among them not serving a request (oldest
    first), and the counts of those it had closed."""

    def __init__(
        self,
        max_open: int,
        header_timeout_s: float,
        max_header_bytes: int,
        open_gauge: Gauge | None = None,
        dropped: Counter | None = None,
    ) -> None:
        self.max_open = max_open
        self.header_timeout_s = header_timeout_s
        self.max_header_bytes = max_header_bytes
        self._open: set[Droppable] = set()
        self._waiting: dict[Droppable, None] = {}
        self._open_gauge = open_gauge
        self._dropped = dropped
        self._unlogged: Tally[DropReason] = Tally()
        self._logged_at = -math.inf

    @property
    def open(self) -> int:
        return len(self._open)

    def opened(self, connection: Droppable) -> bool:
        """Count a new connection; ``False`` when it must be refused."""
        if len(self._open) >= self.max_open:
            oldest = next(iter(self._waiting), None)
            if oldest is None:
                self.drop_counted(DropReason.REFUSED)
                return False
            self.closed(oldest)
            oldest.drop()
            self.drop_counted(DropReason.EVICTED)
        self._open.add(connection)
        self._waiting[connection] = None
        if self._open_gauge is not None:
            self._open_gauge.inc()
        return True

    def waiting(self, connection: Droppable) -> None:
        """``connection`` has answered its request and waits for the next one."""
        if connection in self._open:
            self._waiting.pop(connection, None)
            self._waiting[connection] = None

    def busy(self, connection: Droppable) -> None:
        """``connection`` has a request's headers in full and serves it."""
        self._waiting.pop(connection, None)

    def closed(self, connection: Droppable) -> None:
        if connection in self._open:
            self._open.discard(connection)
            self._waiting.pop(connection, None)
            if self._open_gauge is not None:
                self._open_gauge.dec()

    def drop_counted(self, reason: DropReason) -> None:
        """Count a connection closed for ``reason``, and log the counts now and then."""
        if self._dropped is not None:
            self._dropped.labels(reason=reason.value).inc()
        self._unlogged[reason] += 1
        now = time.monotonic()
        if now - self._logged_at < DROP_LOG_INTERVAL_S:
            return
        counts = ", ".join(f"{n} {why.value}" for why, n in sorted(self._unlogged.items()))
        log.warning(
            "closed HTTP connections: %s; %d open, at most %d (REASEQ_MAX_CONNECTIONS), "
            "headers within %.0f ms (REASEQ_HEADER_READ_TIMEOUT_MS) and %d bytes "
            "(REASEQ_MAX_HEADER_BYTES)",
            counts,
            len(self._open),
            self.max_open,
            self.header_timeout_s * 1000,
            self.max_header_bytes,
        )
        self._unlogged.clear()
        self._logged_at = now


def fit_open_files(max_open: int) -> int:
    """``max_open``, or fewer where the process may not open that many files (plus its
    reserve); the soft limit of open files is first raised as far as the hard one allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = max_open + OPEN_FILES_RESERVE
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return max_open
    raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    except (ValueError, OSError):
        raised = soft
    if raised >= needed:
        return max_open
    fitted = max(raised // 2, raised - OPEN_FILES_RESERVE)
    log.warning(
        "REASEQ_MAX_CONNECTIONS=%d lowered to %d: the process may open %d files; raise its "
        "open-file limit (ulimit -n) to keep the setting",
        max_open,
        fitted,
        raised,
    )
    return fitted
