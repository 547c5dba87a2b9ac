"""Clients of OpenAI-compatible endpoints (chat completions, embeddings) used offline."""

from offline.llm.chat import ChatClient, Completion
from offline.llm.embeddings import EmbeddingError, EmbeddingsClient
from offline.llm.endpoint import EndpointError, ModelEndpoint, RequestStats
from offline.llm.json_extract import JSONExtractionError, extract_json_object
from offline.llm.settings import EmbeddingSettings, EndpointSettings, LLMSettings

__all__ = [
    "ChatClient",
    "Completion",
    "EmbeddingError",
    "EmbeddingSettings",
    "EmbeddingsClient",
    "EndpointError",
    "EndpointSettings",
    "JSONExtractionError",
    "LLMSettings",
    "ModelEndpoint",
    "RequestStats",
    "extract_json_object",
]
