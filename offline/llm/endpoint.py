"""One OpenAI-compatible endpoint on the ``openai`` SDK: timeouts, retries, concurrency, counts.

The SDK retries rate limits (429), server errors (5xx), timeouts and dropped connections with
exponential backoff and jitter, honouring ``Retry-After``; any other 4xx is the caller's mistake and
is raised at once, with the server's message. At most ``max_concurrency`` calls are in flight; a
call keeps its slot while it backs off, so a server that rate-limits is sent less, not more. Every
HTTP attempt is counted, so a run report can say what the endpoint cost.

The base URL and the key come from the settings only: the SDK's own ``OPENAI_API_KEY`` is never
read, and without a key no ``Authorization`` header is sent, so a key meant for one provider cannot
reach another endpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import openai
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion

from offline.llm.settings import EndpointSettings

#: Header the SDK puts on each attempt: how many retries came before it.
_RETRY_COUNT_HEADER = "x-stainless-retry-count"
#: The SDK refuses to start without some key; with none configured this one is never sent.
_NO_KEY = "unused"

Answer = TypeVar("Answer")


class EndpointError(Exception):
    """The endpoint did not give a usable answer; ``reason`` is machine-readable."""

    def __init__(self, reason: str, message: str = "", status: int | None = None) -> None:
        super().__init__(f"{reason} ({status}): {message}" if status else f"{reason}: {message}")
        self.reason, self.message, self.status = reason, message, status


@dataclass
class RequestStats:
    """HTTP attempts sent, and how many of them were retries."""

    requests: int = 0
    retries: int = 0


class ModelEndpoint:
    """One base URL, one SDK client and connection pool, at most ``max_concurrency`` calls."""

    def __init__(self, settings: EndpointSettings) -> None:
        self.settings = settings
        self.stats = RequestStats()
        self._semaphore = asyncio.Semaphore(settings.max_concurrency)
        key = settings.api_key.get_secret_value() if settings.api_key is not None else None
        self._headers: dict[str, Any] = {} if key else {"Authorization": openai.Omit()}
        self._client = openai.AsyncOpenAI(
            base_url=settings.base_url,
            api_key=key or _NO_KEY,
            timeout=settings.timeout_s,
            max_retries=settings.max_retries,
            http_client=openai.DefaultAsyncHttpxClient(event_hooks={"request": [self._count]}),
        )

    async def close(self) -> None:
        await self._client.close()

    async def _count(self, request: Any) -> None:
        self.stats.requests += 1
        if request.headers.get(_RETRY_COUNT_HEADER, "0") != "0":
            self.stats.retries += 1

    async def chat_completion(self, **params: Any) -> ChatCompletion:
        """``POST /chat/completions``; :class:`EndpointError` once the SDK's retries are spent."""
        async with self._call():
            answer = await self._client.chat.completions.create(
                **params, extra_headers=self._headers
            )
        return _checked(answer, ChatCompletion)

    async def embeddings(self, **params: Any) -> CreateEmbeddingResponse:
        """``POST /embeddings``; :class:`EndpointError` once the SDK's retries are spent."""
        async with self._call():
            answer = await self._client.embeddings.create(**params, extra_headers=self._headers)
        return _checked(answer, CreateEmbeddingResponse)

    @asynccontextmanager
    async def _call(self) -> AsyncIterator[None]:
        async with self._semaphore:
            try:
                yield
            except openai.APITimeoutError:
                raise EndpointError("timeout", "no answer within timeout_s") from None
            except openai.APIConnectionError as error:
                cause = type(error.__cause__ or error).__name__
                raise EndpointError("transport", cause) from None
            except openai.APIStatusError as error:
                status = error.status_code
                raise EndpointError(_reason(status), error.message[:500], status) from None
            except openai.APIError as error:
                raise EndpointError("bad_response", error.message[:500]) from None


def _reason(status: int) -> str:
    if status == 429:
        return "rate_limited"
    return "server_error" if status >= 500 else "client_error"


def _checked(answer: object, kind: type[Answer]) -> Answer:
    """The SDK hands back a body that is not JSON as text; that is not an answer."""
    if not isinstance(answer, kind):
        raise EndpointError("bad_response", f"not a JSON {kind.__name__}")
    return answer
