"""Offline item knowledge: a versioned record per item, the backends that write it, its text."""

from offline.knowledge.backend import KnowledgeBackend
from offline.knowledge.metadata_backend import OfflineKnowledgeBackend
from offline.knowledge.schema import KNOWLEDGE_SCHEMA_VERSION, ItemKnowledge, PriceBand
from offline.knowledge.text import knowledge_text

__all__ = [
    "KNOWLEDGE_SCHEMA_VERSION",
    "ItemKnowledge",
    "KnowledgeBackend",
    "OfflineKnowledgeBackend",
    "PriceBand",
    "knowledge_text",
]
