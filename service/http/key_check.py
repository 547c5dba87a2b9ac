"""The API key of a rank request, checked from its headers before a byte of its body is read.

A caller without an accepted key is answered 401 and its connection closed at once: it holds no
admission slot, no body buffer and no connection while it sends (or trickles) a body that would
be refused anyway. An accepted key's digest is left in the scope for admission, which counts the
request against that key. The route's own dependency checks the key again, so the route stays
protected (and documented in the OpenAPI schema) whatever middleware runs in front of it.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import Unauthorized
from service.http.admission import CALLER_SCOPE_KEY, admitted
from service.http.api_keys import API_KEY_HEADER, ApiKeys, rank_caller
from service.http.middleware import answer_and_close, label_route


class RankKeyCheck:
    """Answers 401 to ``POST`` requests to ``paths`` without an accepted key, before their body."""

    def __init__(self, app: ASGIApp, keys: ApiKeys, paths: frozenset[str]) -> None:
        self.app = app
        self.keys = keys
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not admitted(scope, self.paths):
            await self.app(scope, receive, send)
            return
        presented = Headers(scope=scope).get(API_KEY_HEADER)
        try:
            scope[CALLER_SCOPE_KEY] = rank_caller(self.keys, presented)
        except Unauthorized as refused:
            label_route(scope, self.paths)
            await answer_and_close(refused, scope, receive, send)
            return
        await self.app(scope, receive, send)
