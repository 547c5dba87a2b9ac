"""API keys, the body limit and load shedding of a real ``python -m service`` process over HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.exposition import value
from tests.support.http_server import RANK, ServiceProcess, running_service

RANK_KEYS = ("rank-key-one", "rank-key-two")
ADMIN_KEYS = ("admin-key-one", "admin-key-two")
MAX_BODY_BYTES = 8192
BODY_READ_TIMEOUT_MS = 400


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, bundle_root: Path, users_snapshot: Path
) -> Iterator[ServiceProcess]:
    """One admission slot and no queue, so two overlapping rank requests already shed one."""
    folder = tmp_path_factory.mktemp("guarded")
    keys_file = folder / "rank-keys"
    keys_file.write_text("# issued to the feed service\n" + "\n".join(RANK_KEYS) + "\n\n")
    with running_service(
        bundle_root,
        users_snapshot,
        folder / "service.log",
        log_level="info",
        api_keys_file=str(keys_file),
        admin_api_key=",".join(ADMIN_KEYS),
        max_body_bytes=str(MAX_BODY_BYTES),
        body_read_timeout_ms=str(BODY_READ_TIMEOUT_MS),
        rank_max_in_flight="1",
        rank_max_queued="0",
        rank_retry_after_s="2",
    ) as service:
        yield service


def _rank(server: ServiceProcess, body: object = RANK, **headers: str) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/rank", json=body, headers=headers, timeout=10)


def test_rank_without_a_key_is_401(server: ServiceProcess) -> None:
    response = _rank(server)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "ApiKey"
    assert response.json() == {
        "detail": "missing X-API-Key header: this deployment requires an API key",
        "code": "unauthorized",
    }


@pytest.mark.parametrize("key", ["wrong", RANK_KEYS[0].upper(), RANK_KEYS[0][:-1], ADMIN_KEYS[0]])
def test_rank_with_a_wrong_key_is_401(server: ServiceProcess, key: str) -> None:
    response = _rank(server, **{"X-API-Key": key})
    assert response.status_code == 401
    assert "X-API-Key not accepted" in response.json()["detail"]


@pytest.mark.parametrize("key", RANK_KEYS)
def test_every_key_in_the_file_is_accepted(server: ServiceProcess, key: str) -> None:
    response = _rank(server, **{"X-API-Key": key})
    assert response.status_code == 200, response.text
    assert len(response.json()["items"]) == 10


@pytest.mark.parametrize(("key", "status"), [(None, 401), ("wrong", 401), (ADMIN_KEYS[1], 200)])
def test_admin_keys(server: ServiceProcess, key: str | None, status: int) -> None:
    events = {"events": [{"item_id": "i3", "event": "click", "ts": 1_764_000_000}]}
    headers = {"X-API-Key": key} if key else {}
    response = httpx.post(
        f"{server.url}/v1/admin/users/u9/events", json=events, headers=headers, timeout=10
    )
    assert response.status_code == status, response.text


def test_an_oversize_body_is_413_before_parsing(server: ServiceProcess) -> None:
    body = {**RANK, "candidates": [f"item-{n}" for n in range(2000)]}
    response = _rank(server, body, **{"X-API-Key": RANK_KEYS[0]})
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert f"limited to {MAX_BODY_BYTES} bytes" in response.json()["detail"]


def test_an_oversize_chunked_body_is_413(server: ServiceProcess) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"user_id": "u1", "candidates": ["i1"'
        for _ in range(MAX_BODY_BYTES // 100 + 1):
            yield b', "i2"' * 20

    response = httpx.post(
        f"{server.url}/v1/rank",
        content=chunks(),
        headers={"X-API-Key": RANK_KEYS[0], "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


def _trickled_rank(server: ServiceProcess) -> tuple[bytes, float]:
    """A rank request whose body stops half-way: the raw answer, and seconds until it came."""
    body = json.dumps(RANK).encode()
    head = (
        f"POST /v1/rank HTTP/1.1\r\nHost: test\r\nX-API-Key: {RANK_KEYS[0]}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(server.address, timeout=10) as connection:
        connection.sendall(head + body[: len(body) // 2])
        sent = time.monotonic()
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer, time.monotonic() - sent


def test_a_body_that_stops_arriving_is_408_and_holds_no_slot(server: ServiceProcess) -> None:
    answer, waited = _trickled_rank(server)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout", answer
    error = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert error["code"] == "body_timeout"
    assert f"within {BODY_READ_TIMEOUT_MS} ms" in error["detail"]
    assert waited >= BODY_READ_TIMEOUT_MS / 1000 * 0.9
    assert b"\r\nconnection: close\r\n" in answer.lower()
    # The only admission slot is free: a whole request is served, not shed.
    assert _rank(server, **{"X-API-Key": RANK_KEYS[0]}).status_code == 200


@pytest.mark.parametrize("path", ["/v1/rank", "/v1/outcomes"])
def test_a_caller_without_a_key_is_refused_before_its_body(
    server: ServiceProcess, path: str
) -> None:
    """Headers that promise a body which never comes: 401 at once, not the body's 408."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        "Content-Length: 5000\r\n\r\n"
    ).encode()
    with socket.create_connection(server.address, timeout=10) as connection:
        connection.sendall(head)
        answer = connection.recv(65536)
    assert answer.startswith(b"HTTP/1.1 401 "), answer


async def _burst(server: ServiceProcess, size: int) -> tuple[list[httpx.Response], list[int]]:
    """``size`` rank requests at once, and the health endpoints polled while they run."""
    limits = httpx.Limits(max_connections=size + 4)
    async with httpx.AsyncClient(base_url=server.url, timeout=10, limits=limits) as client:
        headers = {"X-API-Key": RANK_KEYS[1]}
        ranks = [client.post("/v1/rank", json=RANK, headers=headers) for _ in range(size)]
        health = [client.get(path) for path in ("/livez", "/readyz", "/metrics") * 3]
        responses = await asyncio.gather(*ranks, *health)
    return list(responses[:size]), [r.status_code for r in responses[size:]]


def test_overload_is_shed_with_429_and_health_is_not(server: ServiceProcess) -> None:
    ranks: list[httpx.Response] = []
    for _ in range(5):  # overlap is near certain in one burst; a few more make it certain
        burst, health = asyncio.run(_burst(server, size=16))
        ranks += burst
        assert health == [200] * len(health)
        if any(r.status_code == 429 for r in ranks):
            break
    statuses = sorted({r.status_code for r in ranks})
    assert statuses == [200, 429], statuses
    for shed in (r for r in ranks if r.status_code == 429):
        assert shed.headers["retry-after"] == "2"
        assert shed.json()["code"] == "overloaded"
        assert "retry after 2 s" in shed.json()["detail"]
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    shed_count = value(metrics, "reaseq_rank_shed_total", reason="queue_full")
    assert shed_count == sum(r.status_code == 429 for r in ranks)
    # Counted under their route, though answered before routing.
    assert value(metrics, "reaseq_requests_total", route="/v1/rank", status="429") == shed_count
    assert value(metrics, "reaseq_rank_in_flight") == 0
    assert value(metrics, "reaseq_rank_queued") == 0


def test_no_key_reaches_the_log(server: ServiceProcess) -> None:
    _rank(server, **{"X-API-Key": "a-wrong-key-of-some-length"})
    _rank(server, **{"X-API-Key": RANK_KEYS[0]})
    text = server.log.read_text()
    assert '"status": 401' in text and '"status": 200' in text
    for key in (*RANK_KEYS, *ADMIN_KEYS, "a-wrong-key-of-some-length"):
        assert key not in text
