"""uvicorn's httptools protocol with a :class:`ConnectionGuard`: a cap on open connections, and
a time and a size limit on request headers (:mod:`service.http.connections` says why).

uvicorn builds one protocol object per connection and hands it the lifespan state, where the
app's lifespan puts the worker's guard; without one the protocol is uvicorn's own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from service.errors import HeadersTooLarge
from service.http.connections import GUARD_STATE_KEY, ConnectionGuard, DropReason
from service.http.errors import error_response

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
        # The size of the current request's headers, counted two ways: what the parser has
        # handed over (request target, header names and values), and every byte received since
        # they began, which includes a field the parser still buffers.
        self._header_fields_bytes = 0
        self._header_bytes_received = 0
        self._reading_headers = True
        self._refusal: HeadersTooLarge | None = None

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

    def data_received(self, data: bytes) -> None:
        if self._reading_headers:
            self._header_bytes_received += len(data)
        super().data_received(data)
        if (
            self._reading_headers
            and self._guard is not None
            and self._header_bytes_received > self._guard.max_header_bytes
            and not self.transport.is_closing()
        ):
            # Every byte since the headers began is theirs, and they have not ended yet.
            self._refuse_headers(_too_large(self._guard.max_header_bytes))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_fields_bytes = 0
        if self._header_timer is None:
            self._start_header_timer()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._count_header_bytes(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._count_header_bytes(len(name) + len(b": ") + len(value) + len(b"\r\n"))

    def on_headers_complete(self) -> None:
        self._stop_header_timer()
        self._reading_headers = False
        self._header_bytes_received = 0
        if self._guard is not None:
            self._guard.busy(self)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_headers = True

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._guard is not None and self.cycle.response_complete:
            # No pipelined request took over: idle until the next one.
            self._guard.waiting(self)

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers every error raised while parsing here, the refusal included (after
        # its own warning, "Invalid HTTP request received.").
        if self._refusal is not None:
            self._refuse_headers(self._refusal)
        else:
            super().send_400_response(msg)

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

    def _count_header_bytes(self, size: int) -> None:
        if self._guard is None:
            return
        self._header_fields_bytes += size
        if self._header_fields_bytes > self._guard.max_header_bytes:
            # Raised in a parser callback, it stops the parser: no request is started.
            self._refusal = _too_large(self._guard.max_header_bytes)
            raise self._refusal

    def _refuse_headers(self, error: HeadersTooLarge) -> None:
        """Answer 431 and close the connection, as uvicorn answers a request it cannot parse."""
        if self._guard is not None:
            self._guard.drop_counted(DropReason.HEADERS_TOO_LARGE)
        self._stop_header_timer()
        answer = error_response(error)
        self.transport.write(_closing_answer(answer, self.server_state.default_headers))
        self.transport.close()


def _too_large(limit: int) -> HeadersTooLarge:
    return HeadersTooLarge(
        f"The request line and headers are over {limit} bytes (REASEQ_MAX_HEADER_BYTES): "
        "send fewer or shorter headers (cookies, tokens)."
    )


def _closing_answer(response: Response, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """``response`` as HTTP/1.1 bytes, with ``Connection: close``."""
    lines = [STATUS_LINE[response.status_code]]
    for name, value in [*default_headers, *response.raw_headers]:
        lines.append(name + b": " + value + b"\r\n")
    return b"".join([*lines, b"connection: close\r\n\r\n", response.body])
