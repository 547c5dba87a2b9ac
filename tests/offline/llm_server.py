"""A scripted OpenAI-compatible server on a free loopback port, for the client tests.

It answers ``/v1/chat/completions`` as a language model would, and ``/v1/embeddings``. What it
does for an item is chosen by the item's title (the tests name items after behaviours): answer
well, wrap the JSON in prose and fences, break the JSON or the schema once, rate-limit once,
fail with 500s, refuse the request (400), stop at the token limit, or answer too slowly. Every
request is recorded, so tests can count them.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ROLES = {
    "Role: attribute analyst": "attributes",
    "Role: scenario reasoner": "scenarios",
    "Role: relation reasoner": "relations",
    "Role: critic": "critic",
}
USAGE = {"prompt_tokens": 11, "completion_tokens": 7}
SLOW_S = 6.0  # well past the tests' client timeout, which a loaded machine must never reach


@dataclass
class Seen:
    path: str
    title: str
    role: str
    response_format: str
    authorization: str


@dataclass
class ServerScript:
    """What the server does; tests change it between runs."""

    supports_json_schema: bool = True
    embed_behaviour: str = "ok"
    embed_dim: int = 8
    embed_delay_s: float = 0.0
    in_flight: int = 0
    peak_in_flight: int = 0
    seen: list[Seen] = field(default_factory=list)
    attempts: Counter[tuple[str, str]] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def titles(self) -> Counter[str]:
        return Counter(s.title for s in self.seen if s.path.endswith("chat/completions"))


def _facts(messages: list[dict[str, str]]) -> dict[str, Any]:
    text = messages[1]["content"].split("Catalogue row:\n", 1)[1]
    value, _ = json.JSONDecoder().raw_decode(text)
    return dict(value)


def valid_answer(role: str, facts: dict[str, Any]) -> dict[str, Any]:
    attributes = {
        "category_path": facts["category_path"].split(">"),
        "brand": facts["brand"],
        "material": facts["material"],
        "style": facts["style"],
        "price_band": facts["price_band"],
        "audience": facts["audience"],
    }
    scenarios = {
        "use_cases": ["testing things"],
        "occasions": ["launch day"],
        "seasons": ["all year"],
        "needs": ["reliability"],
    }
    relations = {
        "complements": ["batteries"],
        "substitutes": ["spare parts"],
        "bought_before": ["toolbox"],
        "bought_after": ["batteries"],
    }
    reasoning = {"reasoning": f"Step 1: read the row. Step 2: decide the {role}."}
    if role == "attributes":
        return reasoning | attributes
    if role == "scenarios":
        return reasoning | scenarios
    if role == "relations":
        return reasoning | relations
    fields = attributes | scenarios | relations
    if facts["title"] == "contradict":
        fields["brand"] = "Some Other Brand"
    return reasoning | fields | {"confidence": dict.fromkeys(fields, 0.9), "conflicts": []}


def chat_reply(
    title: str, attempt: int, answer: dict[str, Any]
) -> tuple[int, str, dict[str, str], str]:
    """(status, body text of the message or error, extra headers, finish reason)."""
    text = json.dumps(answer)
    invalid = json.dumps({"reasoning": "hmm", "unexpected": 1})
    if title == "fenced":
        fenced = f"Here is my answer:\n```json\n{text[:-1]},\n}}\n```\nHope it helps."
        return 200, fenced, {}, "stop"
    if title == "bad-json-once" and attempt == 1:
        return 200, 'I think ["oops", ', {}, "stop"  # JSON, but no object even once repaired
    if title == "schema-once" and attempt == 1:
        return 200, invalid, {}, "stop"
    if title == "always-invalid":
        return 200, invalid, {}, "stop"
    if title == "truncated":
        return 200, text[: len(text) - 3], {}, "length"
    if title == "429-once" and attempt == 1:
        return 429, "slow down", {"Retry-After": "0"}, ""
    if title == "500-always":
        return 500, "internal error", {}, ""
    if title == "bad-request":
        return 400, "unknown field 'temperature'", {}, ""
    if title == "slow":
        time.sleep(SLOW_S)
    return 200, text, {}, "stop"


def completion(model: str, choice: dict[str, Any]) -> dict[str, Any]:
    """A chat completion as an OpenAI-compatible server sends it."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": USAGE | {"total_tokens": sum(USAGE.values())},
    }


def _embedding(text: str, dim: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [(digest[i % len(digest)] - 128) / 128 for i in range(dim)]


def make_handler(script: ServerScript) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def do_POST(self) -> None:
            with script.lock:
                script.in_flight += 1
                script.peak_in_flight = max(script.peak_in_flight, script.in_flight)
            try:
                self._answer()
            finally:
                with script.lock:
                    script.in_flight -= 1

        def _answer(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            auth = self.headers.get("authorization", "")
            if self.path.endswith("/embeddings"):
                return self._embeddings(body, auth)
            messages = body["messages"]
            role = next(r for marker, r in ROLES.items() if marker in messages[0]["content"])
            facts = _facts(messages)
            mode = (body.get("response_format") or {}).get("type", "none")
            with script.lock:
                script.seen.append(Seen(self.path, facts["title"], role, mode, auth))
                if mode == "json_schema" and not script.supports_json_schema:
                    message = "response_format json_schema is not supported by this server"
                    return self._send(400, {"error": {"message": message}}, {})
                script.attempts[(facts["title"], role)] += 1
                attempt = script.attempts[(facts["title"], role)]
            answer = valid_answer(role, facts)
            status, text, headers, finish = chat_reply(facts["title"], attempt, answer)
            if status != 200:
                return self._send(status, {"error": {"message": text}}, headers)
            reply = {"role": "assistant", "content": text}
            choice = {"index": 0, "message": reply, "finish_reason": finish}
            self._send(200, completion(body["model"], choice), headers)

        def _embeddings(self, body: dict[str, Any], auth: str) -> None:
            with script.lock:
                script.seen.append(Seen(self.path, "", "embeddings", "", auth))
                calls = sum(1 for s in script.seen if s.role == "embeddings")
            behaviour = script.embed_behaviour
            time.sleep(script.embed_delay_s)
            if behaviour == "500-always" or (behaviour == "500-once" and calls == 1):
                return self._send(500, {"error": {"message": "boom"}}, {})
            rows = []
            for index, text in enumerate(body["input"]):
                dim = script.embed_dim + (1 if behaviour == "wrong-dims" and index else 0)
                row = {"object": "embedding", "index": index, "embedding": _embedding(text, dim)}
                rows.append(row)
            usage = {"prompt_tokens": 3, "total_tokens": 3}
            answer = {"object": "list", "data": rows[::-1], "model": body["model"], "usage": usage}
            self._send(200, answer, {})

    return Handler


@contextmanager
def serve(script: ServerScript) -> Iterator[str]:
    """The server's ``/v1`` base URL while the block runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(script))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
