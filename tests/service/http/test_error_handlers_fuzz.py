"""Every error handler answers any input with a 4xx ``{detail, code}`` JSON body, never a 500.

Bodies are sent as raw JSON bytes, the way a client's ``json.dumps`` writes them: text outside
ASCII as ``\\uXXXX`` escapes, so a lone UTF-16 surrogate (``"\\ud800"``) reaches the service,
which Python's JSON parser turns into a ``str`` that UTF-8 cannot encode. The handlers echo inputs
back (the field errors of a schema violation), so they must render whatever the parser produced.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from service.app import create_app
from service.settings import Settings
from tests.support.serving import ADMIN_KEY

EXAMPLES = 60
ADMIN = {"X-API-Key": ADMIN_KEY}
EVENT = {"item_id": "i1", "event": "click", "ts": 1_764_000_000}

#: Any code point, surrogates included (Hypothesis leaves them out by default).
any_text = st.text(st.characters(exclude_categories=()), max_size=12)
lone_surrogate = st.integers(0xD800, 0xDFFF).map(chr)


@st.composite
def text_with_a_lone_surrogate(draw: st.DrawFn) -> str:
    text = draw(any_text)
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(lone_surrogate) + text[at:]


#: JSON values of any shape, with such text in strings and keys.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text_with_a_lone_surrogate(),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(text_with_a_lone_surrogate(), inner, max_size=3)
    ),
    max_leaves=8,
)

Body = Callable[[str, Any], object]
#: Where the text goes in a rank request; each place breaks the schema.
RANK_BODIES: list[Body] = [
    lambda text, _: {"user_id": text, "candidates": ["i1"]},
    lambda text, _: {"user_id": "u1", "candidates": ["i1", text]},
    lambda text, value: {"user_id": "u1", "candidates": ["i1"], text: value},
    lambda text, _: {
        "user_id": "u1",
        "candidates": [],
        "recent_events": [{**EVENT, "item_id": text}],
    },
    lambda text, value: {"user_id": value, "candidates": [text]},
    lambda text, value: {text: value},
    lambda text, value: [text, value],
]
#: Free-form text the service keeps to itself: it may take it (200), or refuse it (4xx).
CONTEXT_BODIES: list[Body] = [
    lambda text, _: {"user_id": "u1", "candidates": ["i1"], "context": {text: "feed"}},
    lambda text, _: {"user_id": "u1", "candidates": ["i1"], "context": {"scene": text}},
]
EVENTS_BODIES: list[Body] = [
    lambda text, _: {"events": [{**EVENT, "item_id": text}]},
    lambda text, _: {"events": [{**EVENT, "event_id": text}]},
    lambda text, value: {"events": [{**EVENT, text: value}]},
    lambda text, value: {"events": value, text: 1},
]
ACTIVATE_BODIES: list[Body] = [
    lambda text, _: {"version": text},
    lambda text, value: {"version": value, text: value},
    lambda text, value: {text: [value]},
]
ROUTES = [
    ("/v1/rank", RANK_BODIES),
    ("/v1/admin/users/u1/events", EVENTS_BODIES),
    ("/v1/admin/bundle/activate", ACTIVATE_BODIES),
]


@dataclass(frozen=True)
class Client:
    """Synchronous posts (Hypothesis drives them) to the app on an event loop in a thread."""

    portal: BlockingPortal
    http: httpx.AsyncClient

    def post(self, route: str, sent: bytes) -> httpx.Response:
        headers = {"content-type": "application/json", **ADMIN}
        return self.portal.call(lambda: self.http.post(route, content=sent, headers=headers))


@asynccontextmanager
async def _served(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://rank") as http:
            yield http


@pytest.fixture(scope="module")
def client(bundle_root: Path, users_snapshot: Path) -> Iterator[Client]:
    """The real ASGI app, started (bundle loaded, store open), answering in-process."""
    settings = Settings(
        bundle_root=bundle_root,
        embedded_users_path=users_snapshot,
        admin_api_key=SecretStr(ADMIN_KEY),
        access_log=False,
    )
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(_served(settings)) as http,
    ):
        yield Client(portal, http)


def _assert_4xx_with_detail_and_code(response: httpx.Response, sent: bytes) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text, sent)
    assert response.headers["content-type"] == "application/json", response.text
    body = response.json()
    assert body["detail"] and isinstance(body["code"], str), body


@pytest.mark.parametrize(("route", "bodies"), ROUTES, ids=[route for route, _ in ROUTES])
def test_text_with_lone_surrogates_is_a_4xx(client: Client, route: str, bodies: list[Body]) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.sampled_from(bodies), text_with_a_lone_surrogate(), json_values)
    def answers_4xx(body: Body, text: str, value: object) -> None:
        sent = json.dumps(body(text, value)).encode("ascii")  # \ud800 escapes
        _assert_4xx_with_detail_and_code(client.post(route, sent), sent)

    answers_4xx()


def test_free_form_context_text_is_never_a_5xx(client: Client) -> None:
    @settings(max_examples=EXAMPLES // 2, deadline=None)
    @given(st.sampled_from(CONTEXT_BODIES), text_with_a_lone_surrogate())
    def never_5xx(body: Body, text: str) -> None:
        sent = json.dumps(body(text, None)).encode("ascii")
        response = client.post("/v1/rank", sent)
        if response.status_code != 200:
            _assert_4xx_with_detail_and_code(response, sent)

    never_5xx()


@pytest.mark.parametrize(
    "sent",
    [
        b'{"user_id":"\\ud800","candidates":["i1"]}',
        b'{"user_id":"u1","candidates":["i1"],"\\udfff":1}',
        b'{"user_id":"u1","candidates":[' + b"[" * 600 + b"]" * 600 + b"]}",
        b'{"user_id":"u1","candidates":["i1"],"top_k":' + b"[" * 600 + b"]" * 600 + b"}",
    ],
    ids=["surrogate-value", "surrogate-key", "deep-list", "deep-top-k"],
)
@pytest.mark.parametrize("route", [route for route, _ in ROUTES])
def test_known_troublemakers_are_4xx(client: Client, route: str, sent: bytes) -> None:
    _assert_4xx_with_detail_and_code(client.post(route, sent), sent)
