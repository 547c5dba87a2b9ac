"""The chat client on the SDK against a real local server: retries, refusals, keys, limits."""

from __future__ import annotations

import asyncio
import json

import pytest

from offline.llm import ChatClient, EmbeddingsClient, EmbeddingSettings, EndpointError, LLMSettings
from tests.offline.llm_server import ROLES, ServerScript

ROLE = next(iter(ROLES))
ROW = {
    "category_path": "Home>Kitchen",
    "brand": "Acme",
    "material": "steel",
    "style": "modern",
    "price_band": 3,
    "audience": "",
}


def ask(url: str, title: str, **settings: object) -> tuple[ChatClient, str | EndpointError]:
    """One completion for an item named after the server's behaviour, and the client that asked."""
    values: dict[str, object] = {"base_url": url, "model": "m", "timeout_s": 2.0, "max_retries": 1}
    client = ChatClient(LLMSettings(**(values | settings)))  # type: ignore[arg-type]
    messages = [
        {"role": "system", "content": ROLE},
        {"role": "user", "content": "Catalogue row:\n" + json.dumps(ROW | {"title": title})},
    ]

    async def run() -> str | EndpointError:
        try:
            return (await client.complete(messages, {"type": "object"}, "answer")).content
        except EndpointError as error:
            return error
        finally:
            await client.close()

    return client, asyncio.run(run())


def test_a_rate_limit_is_retried_and_counted(url: str) -> None:
    client, answer = ask(url, "429-once")
    assert isinstance(answer, str) and json.loads(answer)["brand"] == "Acme"
    assert (client.endpoint.stats.requests, client.endpoint.stats.retries) == (2, 1)


def test_a_bad_request_is_raised_at_once_with_the_servers_message(
    script: ServerScript, url: str
) -> None:
    client, answer = ask(url, "bad-request", max_retries=3)
    assert isinstance(answer, EndpointError)
    assert (answer.reason, answer.status) == ("client_error", 400)
    assert "unknown field 'temperature'" in answer.message
    assert len(script.seen) == 1 and client.endpoint.stats.retries == 0


def test_a_slow_server_times_out(url: str) -> None:
    client, answer = ask(url, "slow", timeout_s=0.3, max_retries=0)
    assert isinstance(answer, EndpointError) and answer.reason == "timeout"
    assert client.endpoint.stats.requests == 1


def test_an_answer_cut_at_max_tokens_is_refused(url: str) -> None:
    _, answer = ask(url, "truncated", max_tokens=64)
    assert isinstance(answer, EndpointError) and answer.reason == "truncated"
    assert "max_tokens=64" in answer.message


def test_the_key_comes_from_the_settings_only(
    script: ServerScript, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-meant-for-another-provider")
    ask(url, "ok")
    ask(url, "ok", api_key="sk-ours")
    assert [s.authorization for s in script.seen] == ["", "Bearer sk-ours"]


def test_calls_in_flight_are_bounded(script: ServerScript, url: str) -> None:
    script.embed_delay_s = 0.3
    settings = EmbeddingSettings(base_url=url, model="e", batch_size=1, max_concurrency=2)
    client = EmbeddingsClient(settings)

    async def run() -> None:
        try:
            await client.embed([f"text {n}" for n in range(6)])
        finally:
            await client.close()

    asyncio.run(run())
    assert script.peak_in_flight == 2 and client.endpoint.stats.requests == 6
