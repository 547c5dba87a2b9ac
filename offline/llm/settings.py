"""Settings of the offline side's model endpoints, read from the environment in one place.

Any OpenAI-compatible server works (vLLM, Ollama, a hosted API): a base URL ending in ``/v1``, a
model name and, if the server wants one, an API key. The key is a secret: it is only ever put in
the ``Authorization`` header, never logged, printed or written to a report. The ``openai`` SDK's
own variables (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``) are not read.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class EndpointSettings(BaseSettings):
    """What every endpoint client needs: where, which model, how hard to try."""

    model_config = SettingsConfigDict(extra="ignore")

    base_url: str = Field(default="http://127.0.0.1:8000/v1", description="Ends in /v1.")
    model: str = Field(default="", description="Model name the server knows.")
    api_key: SecretStr | None = Field(default=None, description="Bearer token, if required.")
    timeout_s: float = Field(
        default=60.0, gt=0, description="Per HTTP attempt: to connect, and for each read or write."
    )
    max_concurrency: int = Field(
        default=8, ge=1, description="Calls in flight at once; one that backs off keeps its slot."
    )
    max_retries: int = Field(
        default=4,
        ge=0,
        description="Retries on 429, 5xx, timeouts and dropped connections, with the openai SDK's "
        "exponential backoff (Retry-After honoured).",
    )


class LLMSettings(EndpointSettings):
    """The chat-completions endpoint the knowledge agents call (``REASEQ_LLM_*``)."""

    model_config = SettingsConfigDict(env_prefix="REASEQ_LLM_", extra="ignore")

    max_repairs: int = Field(default=2, ge=0, description="Re-asks after an invalid answer.")
    temperature: float = Field(default=0.0, ge=0)
    max_tokens: int = Field(default=1024, gt=0)
    response_format: Literal["json_schema", "json_object", "none"] = Field(
        default="json_schema",
        description="Strongest structured-output mode to try; lowered when the server refuses it.",
    )


class EmbeddingSettings(EndpointSettings):
    """The ``/v1/embeddings`` endpoint a remote text encoder calls (``REASEQ_EMBED_*``)."""

    model_config = SettingsConfigDict(env_prefix="REASEQ_EMBED_", extra="ignore")

    batch_size: int = Field(default=64, ge=1, description="Texts per request.")
    dimensions: int | None = Field(
        default=None, ge=1, description="Sent as `dimensions` (models that can shorten output)."
    )
