"""Request IDs and structured logs: echoed, carried on every line, and never a secret."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator

import pytest

from service.observability.logs import JsonFormatter, SecretRedactor, redact_url_passwords
from tests.support.logs import captured_logs
from tests.support.serving import ADMIN_KEY, Serving

pytestmark = pytest.mark.anyio
HEX_ID = re.compile(r"^[0-9a-f]{32}$")
REDIS_PASSWORD = "hunter2-redis"


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Every log record of the test, formatted as the service formats it, one per line."""
    with captured_logs(JsonFormatter(SecretRedactor([ADMIN_KEY]))) as stream:
        yield stream


def _entries(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_request_id_is_taken_echoed_and_made(serving: Serving) -> None:
    async with serving() as client:
        given = await client.post(
            "/v1/rank",
            json={"user_id": "u1", "candidates": ["i1"]},
            headers={"X-Request-ID": "req-7f"},
        )
        made = await client.post("/v1/rank", json={"user_id": "u1", "candidates": ["i1"]})
        hostile = await client.post(
            "/v1/rank",
            json={"user_id": "u1", "candidates": ["i1"]},
            headers={"X-Request-ID": "x" * 500},
        )
        invalid = await client.post("/v1/rank", json={}, headers={"X-Request-ID": "bad-1"})
    assert given.headers["X-Request-ID"] == given.json()["request_id"] == "req-7f"
    assert HEX_ID.match(made.headers["X-Request-ID"])
    assert made.json()["request_id"] == made.headers["X-Request-ID"]
    assert hostile.status_code == 200 and HEX_ID.match(hostile.json()["request_id"])
    assert hostile.headers["X-Request-ID"] == hostile.json()["request_id"]
    assert invalid.status_code == 422 and invalid.headers["X-Request-ID"] == "bad-1"


async def test_access_log_lines_are_json_with_the_request_id(
    serving: Serving, json_logs: io.StringIO
) -> None:
    async with serving() as client:
        await client.post(
            "/v1/rank",
            json={"user_id": "u1", "candidates": ["i1", "i3"]},
            headers={"X-Request-ID": "trace-me"},
        )
    entries = _entries(json_logs)
    assert entries, "the service logged nothing"
    for entry in entries:
        assert {"ts", "level", "logger", "message", "request_id"} <= set(entry)
    access = [e for e in entries if e["logger"] == "service.access"]
    assert len(access) == 1
    assert access[0]["request_id"] == "trace-me"
    assert access[0]["method"] == "POST" and access[0]["path"] == "/v1/rank"
    assert access[0]["status"] == 200
    assert isinstance(access[0]["duration_ms"], float) and access[0]["duration_ms"] > 0
    startup = [e for e in entries if e["message"] == "starting"]
    assert startup and startup[0]["request_id"] == "-"


async def test_no_secret_reaches_the_logs(serving: Serving, json_logs: io.StringIO) -> None:
    redis_url = f"redis://ranker:{REDIS_PASSWORD}@127.0.0.1:1/0"
    async with serving(store="redis", redis_url=redis_url, redis_timeout_ms=100) as client:
        await client.get("/readyz")
        await client.post("/v1/rank", json={"user_id": "u1", "candidates": ["i1"]})
        events = {"events": [{"item_id": "i1", "event": "click", "ts": 1_700_000_000}]}
        for key in (ADMIN_KEY, "wrong-key"):
            await client.post("/v1/admin/users/u1/events", json=events, headers={"X-API-Key": key})
        logging.getLogger("service").warning("connecting to %s with key %s", redis_url, ADMIN_KEY)
    text = json_logs.getvalue()
    assert REDIS_PASSWORD not in text
    assert ADMIN_KEY not in text
    assert "redis://ranker:***@127.0.0.1:1/0" in text
    statuses = [e["status"] for e in _entries(json_logs) if e["logger"] == "service.access"]
    assert 503 in statuses and 401 in statuses


def test_redaction_of_urls_and_known_secrets() -> None:
    assert (
        redact_url_passwords("rediss://:p%40ss@cache:6380/0 ok") == "rediss://:***@cache:6380/0 ok"
    )
    assert redact_url_passwords("redis://cache:6379/0") == "redis://cache:6379/0"
    redactor = SecretRedactor(["abc", "abcdef"])
    assert redactor("key abcdef and abc") == "key *** and ***"


async def test_text_format_is_available(serving: Serving) -> None:
    async with serving(log_format="text") as client:
        assert (await client.get("/livez")).status_code == 200


def test_exceptions_are_one_json_line() -> None:
    formatter = JsonFormatter()
    try:
        raise RuntimeError("redis://u:secret@h:1 refused")
    except RuntimeError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "failed", (), exc_info=sys.exc_info()
        )
    line = formatter.format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert "secret" not in line and "RuntimeError" in str(entry["exception"])


async def test_requests_that_fail_validation_are_logged_with_their_id(
    serving: Serving, json_logs: io.StringIO
) -> None:
    async with serving() as client:
        response = await client.post(
            "/v1/rank", json={"user_id": "u1"}, headers={"X-Request-ID": "v"}
        )
    assert response.status_code == 422
    access = [e for e in _entries(json_logs) if e["logger"] == "service.access"]
    assert access[-1]["request_id"] == "v" and access[-1]["status"] == 422
