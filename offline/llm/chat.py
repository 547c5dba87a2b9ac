"""A chat-completions client that asks for structured output as strongly as the server allows.

It starts with ``response_format: {"type": "json_schema", ...}``; a server that answers 400 because
it does not support that mode is asked again in ``json_object`` mode, then with no
``response_format`` at all (the prompt still quotes the schema). The mode that worked is kept for
the client's later calls, so a server is probed once per run, not once per item.

An answer cut off at ``max_tokens`` is an error (``truncated``), not text to repair: the JSON
repair would close it and keep a half-written last value, and asking again within the same
budget would be cut off again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from offline.llm.endpoint import EndpointError, ModelEndpoint
from offline.llm.settings import LLMSettings

log = logging.getLogger(__name__)

ResponseMode = Literal["json_schema", "json_object", "none"]
MODES: tuple[ResponseMode, ...] = ("json_schema", "json_object", "none")
_UNSUPPORTED_HINTS = (
    "response_format",
    "json_schema",
    "json_object",
    "not supported",
    "unsupported",
)


@dataclass(frozen=True)
class Completion:
    content: str
    prompt_tokens: int
    completion_tokens: int


class ChatClient:
    """``POST /chat/completions`` for one model, through :class:`ModelEndpoint`."""

    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings
        self.endpoint = ModelEndpoint(settings)
        self.mode: ResponseMode = settings.response_format

    @property
    def model(self) -> str:
        return self.settings.model

    async def close(self) -> None:
        await self.endpoint.close()

    def _payload(
        self, messages: list[dict[str, str]], schema: dict[str, Any], name: str
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.settings.model,
            "messages": messages,
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens,
        }
        if self.mode == "json_schema":
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": False},
            }
        elif self.mode == "json_object":
            payload["response_format"] = {"type": "json_object"}
        return payload

    async def complete(
        self, messages: list[dict[str, str]], schema: dict[str, Any], name: str
    ) -> Completion:
        """The first choice's text and the tokens spent; :class:`EndpointError` on failure."""
        while True:
            mode = self.mode
            try:
                payload = self._payload(messages, schema, name)
                answer = await self.endpoint.chat_completion(**payload)
                break
            except EndpointError as error:
                if not self._downgrade(error, mode):
                    raise
        if not answer.choices or answer.choices[0].message is None:
            raise EndpointError("bad_response", "no choices[0].message")
        choice = answer.choices[0]
        if choice.finish_reason == "length":
            limit = self.settings.max_tokens
            raise EndpointError("truncated", f"the answer reached max_tokens={limit}")
        usage = answer.usage
        return Completion(
            content=choice.message.content if isinstance(choice.message.content, str) else "",
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        )

    def _downgrade(self, error: EndpointError, tried: ResponseMode) -> bool:
        """Lower the structured-output mode after a 400 that blames it; False if it did not.

        Concurrent calls may all be refused in the same mode: only the first lowers it, the
        others just retry in the mode already lowered.
        """
        text = error.message.lower()
        if error.status != 400 or tried == "none":
            return False
        if not any(hint in text for hint in _UNSUPPORTED_HINTS):
            return False
        if self.mode != tried:
            return True
        self.mode = MODES[MODES.index(tried) + 1]
        log.info("the server refused the response format; trying %s", self.mode)
        return True
