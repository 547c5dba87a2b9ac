"""uvicorn's httptools protocol with a :class:`ConnectionGuard`: a cap on open connections and
a time limit on request headers (:mod:`service.http.connections` says why).

uvicorn builds one protocol object per connection and hands it the lifespan state, where the
app's lifespan puts the worker's guard; without one the protocol is uvicorn's own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from service.http.connections import GUARD_STATE_KEY, ConnectionGuard, DropReason

#: uvicorn's ``http`` option naming the protocol below (a name, so that worker processes
#: started by uvicorn import it themselves).
GUARDED_PROTOCOL = "service.http.uvicorn_protocol:GuardedHttpToolsProtocol"


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the worker's :class:`ConnectionGuard` applied."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._guard: ConnectionGuard | None = app_state.get(GUARD_STATE_KEY)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        if self._guard is None:
            return
        if not self._guard.opened(self):
            transport.close()
            return
        self._start_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        if self._guard is not None:
            self._guard.closed(self)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._start_header_timer()

    def on_headers_complete(self) -> None:
        self._stop_header_timer()
        if self._guard is not None:
            self._guard.busy(self)
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._guard is not None and self.cycle.response_complete:
            # No pipelined request took over: idle until the next one.
            self._guard.waiting(self)

    def drop(self) -> None:
        self._stop_header_timer()
        if not self.transport.is_closing():
            self.transport.close()

    def _start_header_timer(self) -> None:
        if self._guard is not None:
            self._header_timer = self.loop.call_later(
                self._guard.header_timeout_s, self._headers_late
            )

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self._guard is None or self.transport.is_closing():
            return
        self._guard.drop_counted(DropReason.HEADER_TIMEOUT)
        self.transport.close()
