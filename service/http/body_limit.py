"""The request body limits: bodies over ``max_bytes`` get 413 before anything parses them, and
bodies that do not arrive within ``read_timeout_s`` get 408.

A declared ``Content-Length`` over the limit is refused before a byte of the body is read. A body
without one (chunked) is read up to the limit and refused as soon as it goes over, so neither a
lying client nor a streaming one can make the service hold more than the limit in memory. The
whole body must arrive within the read timeout, counted from its first read: a client that
trickles its body (or stops sending) cannot hold a connection and a buffer for longer than that.
It never holds an admission slot meanwhile: admission waits for the whole body. Each refusal
closes the connection, so the server does not go on reading the rest of the body. The size of
a body read in full is left in the scope, where admission weighs the request by it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import BodyReadTimeout, BodyTooLarge, ServiceError
from service.http.middleware import answer_and_close, label_route

#: The scope entry where the size of the whole body, in bytes, is left for admission.
BODY_BYTES_SCOPE_KEY = "reaseq.body_bytes"
#: Methods whose requests this service never reads a body from.
_BODILESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


class RequestBodyLimit:
    """ASGI middleware holding each request body to ``max_bytes`` and ``read_timeout_s``."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        read_timeout_s: float,
        labelled_paths: Collection[str] = frozenset(),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s
        self.labelled_paths = labelled_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _BODILESS_METHODS:
            await self.app(scope, receive, send)
            return
        declared = _content_length(Headers(scope=scope))
        if declared is not None and declared > self.max_bytes:
            await self._refuse(f"declares {declared}", scope, receive, send)
            return
        body = bytearray()
        more = True
        deadline = time.monotonic() + self.read_timeout_s
        while more:
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    message = await receive()
            except TimeoutError:
                await self._refuse_slow(len(body), scope, receive, send)
                return
            if message["type"] != "http.request":
                # The client went away mid-body: let the app see the disconnect.
                await self.app(scope, _replay({"type": message["type"]}, receive), send)
                return
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
            if len(body) > self.max_bytes:
                await self._refuse("is longer", scope, receive, send)
                return
        whole: Message = {"type": "http.request", "body": bytes(body), "more_body": False}
        scope[BODY_BYTES_SCOPE_KEY] = len(body)
        await self.app(scope, _replay(whole, receive), send)

    async def _refuse(self, what: str, scope: Scope, receive: Receive, send: Send) -> None:
        await self._answer(
            BodyTooLarge(
                f"request bodies are limited to {self.max_bytes} bytes and this one {what}: "
                "send fewer candidates or events per request"
            ),
            scope,
            receive,
            send,
        )

    async def _refuse_slow(self, read: int, scope: Scope, receive: Receive, send: Send) -> None:
        await self._answer(
            BodyReadTimeout(
                f"the request body did not arrive within {self.read_timeout_s * 1000:.0f} ms "
                f"({read} bytes came): send the whole body at once"
            ),
            scope,
            receive,
            send,
        )

    async def _answer(
        self, error: ServiceError, scope: Scope, receive: Receive, send: Send
    ) -> None:
        label_route(scope, self.labelled_paths)
        await answer_and_close(error, scope, receive, send)


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None or not value.isdigit():
        return None
    return int(value)


def _replay(first: Message, receive: Receive) -> Receive:
    """A ``receive`` that answers ``first`` once, then defers to the server's."""
    pending: list[Message] = [first]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed
