"""Hostile and greedy clients against a real ``python -m service`` process over TCP: slow bodies,
connections that never finish their headers, one API key flooding the others."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections import Counter

import httpx

from service.http.admission import ShedReason
from tests.support.exposition import value
from tests.support.http_server import RANK, ServiceProcess, module_service

LEGIT_KEY = "legit-key"
GREEDY_KEY = "greedy-key"
MAX_IN_FLIGHT = 4
PER_KEY = 2
BODY_READ_TIMEOUT_MS = 1500
HEADER_READ_TIMEOUT_MS = 2000
MAX_CONNECTIONS = 200
DEADLINE_S = 3.0
LEGIT_REQUESTS = 15


#: Few admission slots and a short queue, which a handful of hostile clients could fill.
server = module_service(
    "attacked",
    api_keys=f"{LEGIT_KEY},{GREEDY_KEY}",
    rank_max_in_flight=str(MAX_IN_FLIGHT),
    rank_max_queued=str(MAX_IN_FLIGHT),
    rank_queue_timeout_ms="200",
    rank_max_in_flight_per_key=str(PER_KEY),
    body_read_timeout_ms=str(BODY_READ_TIMEOUT_MS),
    header_read_timeout_ms=str(HEADER_READ_TIMEOUT_MS),
    max_connections=str(MAX_CONNECTIONS),
)


def _metrics(server: ServiceProcess) -> str:
    return httpx.get(f"{server.url}/metrics", timeout=10).text


async def _trickle(server: ServiceProcess, key: str | None, stop: asyncio.Event) -> Counter[str]:
    """Rank requests whose bodies come a byte at a time, again each time the server closes
    one, until ``stop``: the status lines (or ``open``) each connection ended with."""
    body = json.dumps(RANK).encode()
    key_line = f"X-API-Key: {key}\r\n" if key else ""
    head = (
        f"POST /v1/rank HTTP/1.1\r\nHost: test\r\n{key_line}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    ended: Counter[str] = Counter()
    while not stop.is_set():
        reader, writer = await asyncio.open_connection(*server.address)
        writer.write(head + body[:10])
        answer = b""
        for byte in body[10:-1]:
            with contextlib.suppress(TimeoutError):
                answer += await asyncio.wait_for(reader.read(4096), timeout=0.1)
            if answer or stop.is_set():
                break
            writer.write(bytes([byte]))
        ended[answer.partition(b"\r\n")[0].decode() or "open"] += 1
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        await asyncio.sleep(0.2)
    return ended


async def _legit(client: httpx.AsyncClient, count: int) -> list[tuple[int, float]]:
    """``count`` keyed rank requests one after the other: status and seconds of each."""
    answers = []
    body = {**RANK, "timeout_ms": int(DEADLINE_S * 1000)}
    for _ in range(count):
        started = time.monotonic()
        response = await client.post("/v1/rank", json=body, headers={"X-API-Key": LEGIT_KEY})
        answers.append((response.status_code, time.monotonic() - started))
    return answers


async def _slow_body_attack(
    server: ServiceProcess, unkeyed: int, keyed: int
) -> tuple[list[tuple[int, float]], Counter[str]]:
    """Legitimate requests while slow clients hold connections, for at least two body
    timeouts."""
    limits = httpx.Limits(max_connections=4)
    async with httpx.AsyncClient(base_url=server.url, timeout=10, limits=limits) as client:
        await client.post("/v1/rank", json=RANK, headers={"X-API-Key": LEGIT_KEY})  # warm
        stop = asyncio.Event()
        attackers = [_trickle(server, None, stop) for _ in range(unkeyed)]
        attackers += [_trickle(server, LEGIT_KEY, stop) for _ in range(keyed)]
        attack = asyncio.gather(*attackers)
        started = time.monotonic()
        await asyncio.sleep(0.5)  # every slow connection is open and sending
        legit = await asyncio.gather(*(_legit(client, LEGIT_REQUESTS) for _ in range(PER_KEY)))
        await asyncio.sleep(2 * BODY_READ_TIMEOUT_MS / 1000 - (time.monotonic() - started))
        stop.set()
        ended = sum(await attack, Counter())
    return [answer for answers in legit for answer in answers], ended


def test_slow_bodies_hold_no_admission_slot(server: ServiceProcess) -> None:
    answers, ended = asyncio.run(_slow_body_attack(server, unkeyed=40, keyed=10))
    on_time = [s for s, took in answers if s == 200 and took <= DEADLINE_S]
    assert len(on_time) >= 0.99 * len(answers), Counter(s for s, _ in answers)
    # Unkeyed ones were refused from their headers; keyed ones at the body timeout.
    assert ended["HTTP/1.1 401 Unauthorized"] >= 40, ended
    assert ended["HTTP/1.1 408 Request Timeout"] >= 10, ended
    metrics = _metrics(server)
    assert value(metrics, "reaseq_rank_in_flight") == 0
    assert value(metrics, "reaseq_rank_queued") == 0


async def _greedy_and_modest(server: ServiceProcess) -> tuple[list[int], list[int]]:
    """Bursts of one key against another key's requests one at a time."""
    limits = httpx.Limits(max_connections=40)
    async with httpx.AsyncClient(base_url=server.url, timeout=10, limits=limits) as client:

        async def rank(key: str) -> int:
            response = await client.post("/v1/rank", json=RANK, headers={"X-API-Key": key})
            return response.status_code

        greedy: list[int] = []
        modest: list[int] = []

        async def one_at_a_time(until: float) -> None:
            while time.monotonic() < until:
                modest.append(await rank(LEGIT_KEY))

        for _ in range(5):
            until = time.monotonic() + 60
            steady = asyncio.create_task(one_at_a_time(until))
            greedy += await asyncio.gather(*(rank(GREEDY_KEY) for _ in range(32)))
            steady.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await steady
            if 429 in greedy:
                break
    return greedy, modest


def _sheds(server: ServiceProcess) -> Counter[str]:
    metrics = _metrics(server)
    return Counter(
        {
            reason.value: value(metrics, "reaseq_rank_shed_total", reason=reason.value)
            for reason in ShedReason
        }
    )


def test_one_key_cannot_take_every_slot(server: ServiceProcess) -> None:
    shed_before = _sheds(server)
    greedy, modest = asyncio.run(_greedy_and_modest(server))
    assert set(greedy) == {200, 429}, Counter(greedy)
    assert modest and set(modest) == {200}, Counter(modest)
    shed = _sheds(server)
    shed.subtract(shed_before)
    assert shed.total() == greedy.count(429), shed
    # Past its slots and queue places the key's share refuses the burst at once; only the few
    # that got one of its queue places may be shed by the queue's time limits instead (a burst
    # turns the queue standing, which lets its waiters go after a few milliseconds).
    assert shed[ShedReason.KEY_LIMIT.value] > shed.total() / 2, shed


def _half_open(server: ServiceProcess, count: int) -> list[socket.socket]:
    """Connections that send a request line and one header, and never the blank line."""
    opened = []
    for _ in range(count):
        connection = socket.create_connection(server.address, timeout=5)
        connection.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
        opened.append(connection)
    return opened


def _closed_by_server(connection: socket.socket) -> bool:
    connection.settimeout(0.05)
    try:
        return connection.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def test_unfinished_headers_are_capped_and_timed_out(server: ServiceProcess) -> None:
    before = _metrics(server)
    started = time.monotonic()
    opened = _half_open(server, MAX_CONNECTIONS + 100)
    try:
        live = httpx.get(f"{server.url}/livez", timeout=5)
        during = _metrics(server)
        assert time.monotonic() - started < HEADER_READ_TIMEOUT_MS / 1000, "too slow to test"
        assert live.status_code == 200
        assert value(during, "reaseq_http_connections_open") <= MAX_CONNECTIONS
        assert _dropped(during, "evicted") - _dropped(before, "evicted") >= 100
        time.sleep(HEADER_READ_TIMEOUT_MS / 1000 + 0.5)
        assert all(_closed_by_server(connection) for connection in opened)
    finally:
        for connection in opened:
            connection.close()
    after = _metrics(server)
    timed_out = _dropped(after, "header_timeout") - _dropped(before, "header_timeout")
    assert timed_out >= MAX_CONNECTIONS - 10
    assert value(after, "reaseq_http_connections_open") <= 2
    assert "closed HTTP connections" in server.log.read_text()


def _dropped(metrics: str, reason: str) -> float:
    return value(metrics, "reaseq_http_connections_dropped_total", reason=reason)
