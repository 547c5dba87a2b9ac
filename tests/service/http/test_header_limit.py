"""Request headers over ``REASEQ_MAX_HEADER_BYTES`` against a real ``python -m service`` process
over TCP: answered 431 and closed before the app sees them, however the headers are too large;
requests under the limit, bodies included, are served as before."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from tests.support.exposition import value
from tests.support.http_server import RANK, ServiceProcess, module_service

#: The default: the server runs without the setting.
MAX_HEADER_BYTES = 16_384
OVERSIZED = 64 * 1024


server = module_service("header_limit")


def _exchange(server: ServiceProcess, request: bytes) -> tuple[bytes, bool]:
    """What the server answers ``request`` on a new connection, and whether it then closed it."""
    with socket.create_connection(server.address, timeout=5) as connection:
        connection.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = connection.recv(65536)
            if not chunk:
                return answer, True
            answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        length = int(_header(head, b"content-length") or 0)
        while len(body) < length:
            chunk = connection.recv(65536)
            if not chunk:
                break
            body += chunk
        connection.settimeout(2)
        try:
            closed = connection.recv(1) == b""
        except TimeoutError:
            closed = False
        except ConnectionError:
            closed = True
        return head + b"\r\n\r\n" + body, closed


def _header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        field, _, found = line.partition(b":")
        if field.strip().lower() == name:
            return found.strip()
    return None


def _filler(total: int, each: int = 1024) -> bytes:
    """Header lines ``X-Filler-<n>: aaa…`` of ``each`` bytes, ``total`` bytes together."""
    lines = []
    for n in range(total // each):
        name = f"X-Filler-{n}: ".encode()
        lines.append(name + b"a" * (each - len(name) - 2) + b"\r\n")
    return b"".join(lines)


OVERSIZED_REQUESTS = {
    # 64 header lines of 1 KiB, sent at once: the parser hands them over one by one.
    "many_headers": b"GET /livez HTTP/1.1\r\nHost: x\r\n" + _filler(OVERSIZED) + b"\r\n",
    # One field that never ends: the parser would buffer it whole, however long.
    "one_unfinished_header": b"GET /livez HTTP/1.1\r\nHost: x\r\nCookie: " + b"a" * OVERSIZED,
    "long_url": b"GET /livez?q=" + b"a" * OVERSIZED + b" HTTP/1.1\r\nHost: x\r\n\r\n",
}


def _dropped(server: ServiceProcess) -> float:
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    return value(metrics, "reaseq_http_connections_dropped_total", reason="headers_too_large")


@pytest.mark.parametrize("shape", sorted(OVERSIZED_REQUESTS))
def test_headers_over_the_limit_are_answered_431_and_the_connection_closed(
    server: ServiceProcess, shape: str
) -> None:
    before = _dropped(server)
    answer, closed = _exchange(server, OVERSIZED_REQUESTS[shape])
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert json.loads(body)["code"] == "headers_too_large"
    assert str(MAX_HEADER_BYTES).encode() in body and b"REASEQ_MAX_HEADER_BYTES" in body
    assert closed
    assert httpx.get(f"{server.url}/livez", timeout=5).status_code == 200
    assert _dropped(server) - before == 1


def test_headers_under_the_limit_are_served_on_one_connection(server: ServiceProcess) -> None:
    """Two requests with 12 KiB of headers each, one after the other on the same connection:
    each request's headers are counted afresh."""
    before = _dropped(server)
    headers = {f"X-Filler-{n}": "a" * 1000 for n in range(12)}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(2):
            assert client.get("/livez", headers=headers).status_code == 200
    assert _dropped(server) == before


def test_a_body_sent_with_its_headers_does_not_count_as_headers(server: ServiceProcess) -> None:
    """Headers of 12 KiB and a 40 KiB body in one write: a rank answer, not a 431."""
    body = json.dumps(RANK).encode() + b" " * (40 * 1024)
    head = (
        b"POST /v1/rank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n".encode()
        + _filler(12 * 1024)
        + b"\r\n"
    )
    answer, _ = _exchange(server, head + body)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["items"]


def test_refused_headers_never_reach_the_app(server: ServiceProcess) -> None:
    """No route, admission slot or worker thread sees them: /livez counts no request, and
    nothing is in flight or answered 500."""
    livez = {"route": "/livez", "status": "200"}
    assert httpx.get(f"{server.url}/livez", timeout=5).status_code == 200
    before = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert value(before, "reaseq_requests_total", **livez) >= 1
    for _ in range(5):
        answer, _ = _exchange(server, OVERSIZED_REQUESTS["many_headers"])
        assert answer.startswith(b"HTTP/1.1 431 ")
    after = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert value(after, "reaseq_requests_total", **livez) == value(
        before, "reaseq_requests_total", **livez
    )
    assert value(after, "reaseq_rank_in_flight") == 0
    assert 'status="500"' not in after
    assert "Traceback" not in server.log.read_text()
