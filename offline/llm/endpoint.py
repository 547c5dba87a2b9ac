"""POST JSON to an OpenAI-compatible endpoint with bounded concurrency, timeouts and retries.

Rate limits (429), server errors (5xx), timeouts and dropped connections are retried with
exponential backoff and full jitter, honouring ``Retry-After`` when the server sends one; any
other 4xx is the caller's mistake and is raised at once, with the server's message. Every request
and retry is counted, so a run report can say what the endpoint cost.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from offline.llm.settings import EndpointSettings

log = logging.getLogger(__name__)


class EndpointError(Exception):
    """The endpoint did not give a usable answer; ``reason`` is machine-readable."""

    def __init__(self, reason: str, message: str = "", status: int | None = None) -> None:
        super().__init__(f"{reason} ({status}): {message}" if status else f"{reason}: {message}")
        self.reason, self.message, self.status = reason, message, status


@dataclass
class RequestStats:
    requests: int = 0
    retries: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.by_outcome[outcome] = self.by_outcome.get(outcome, 0) + 1


def retry_after_s(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait (delta-seconds or an HTTP date), if it said."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


class JsonEndpoint:
    """One base URL, one shared connection pool, at most ``max_concurrency`` requests in flight."""

    def __init__(self, settings: EndpointSettings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.stats = RequestStats()
        self._rng = rng or random.Random()
        self._semaphore = asyncio.Semaphore(settings.max_concurrency)
        headers = {"content-type": "application/json"}
        if settings.api_key is not None:
            headers["authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
        self._client = httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=settings.timeout_s,
            limits=httpx.Limits(max_connections=settings.max_concurrency),
        )

    async def close(self) -> None:
        await self._client.aclose()

    def backoff_s(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter under an exponential ceiling; a server's Retry-After is a floor."""
        ceiling = min(self.settings.backoff_max_s, self.settings.backoff_base_s * 2**attempt)
        delay = self._rng.uniform(0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.settings.backoff_max_s))
        return delay

    async def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The decoded JSON answer; :class:`EndpointError` once retries are spent."""
        failure = EndpointError("unknown")
        for attempt in range(self.settings.max_retries + 1):
            if attempt:
                self.stats.retries += 1
            retry_after: float | None = None
            try:
                async with self._semaphore:
                    self.stats.requests += 1
                    response = await self._client.post(path.lstrip("/"), json=payload)
            except httpx.TimeoutException as error:
                failure = EndpointError("timeout", type(error).__name__)
            except httpx.TransportError as error:
                failure = EndpointError("transport", type(error).__name__)
            else:
                if response.status_code < 400:
                    self.stats.count("ok")
                    return _decoded(response)
                failure = EndpointError(
                    _reason(response.status_code), response.text[:500], response.status_code
                )
                if not _retryable(response.status_code):
                    self.stats.count(failure.reason)
                    raise failure
                retry_after = retry_after_s(response)
            self.stats.count(failure.reason)
            if attempt < self.settings.max_retries:
                delay = self.backoff_s(attempt, retry_after)
                log.debug("%s on %s, retry in %.2f s", failure.reason, path, delay)
                await asyncio.sleep(delay)
        raise failure


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def _reason(status: int) -> str:
    if status == 429:
        return "rate_limited"
    return "server_error" if status >= 500 else "client_error"


def _decoded(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as error:
        raise EndpointError("bad_response", f"not JSON: {error}", response.status_code) from None
    if not isinstance(body, dict):
        raise EndpointError("bad_response", "not a JSON object", response.status_code)
    return body
