"""Offline item knowledge: a team of reasoning agents, their backends and cache, the record.

The deterministic :class:`OfflineKnowledgeBackend` answers every agent role from the metadata and
the world tables; :class:`LLMAgentBackend` answers them with a chat model; :class:`KnowledgeTeam`
runs the roles over a catalogue with a cache and a run report. Whatever answered, the result is
one validated :class:`ItemKnowledge` per item, and :func:`knowledge_text` is what gets encoded.
"""

from offline.knowledge.agents import (
    AgentBackend,
    AgentFailure,
    AgentReply,
    AgentRole,
    AttributeAnswer,
    CriticAnswer,
    Findings,
    RelationAnswer,
    ScenarioAnswer,
)
from offline.knowledge.backend import KnowledgeBackend
from offline.knowledge.cache import KnowledgeCache
from offline.knowledge.facts import ItemFacts, catalogue_facts
from offline.knowledge.llm_backend import LLMAgentBackend
from offline.knowledge.metadata_backend import OfflineKnowledgeBackend
from offline.knowledge.prompts import PROMPTS, AgentPrompt
from offline.knowledge.run_report import KnowledgeRunReport
from offline.knowledge.schema import KNOWLEDGE_SCHEMA_VERSION, ItemKnowledge, PriceBand
from offline.knowledge.team import KnowledgeTeam
from offline.knowledge.text import knowledge_text

__all__ = [
    "KNOWLEDGE_SCHEMA_VERSION",
    "PROMPTS",
    "AgentBackend",
    "AgentFailure",
    "AgentPrompt",
    "AgentReply",
    "AgentRole",
    "AttributeAnswer",
    "CriticAnswer",
    "Findings",
    "ItemFacts",
    "ItemKnowledge",
    "KnowledgeBackend",
    "KnowledgeCache",
    "KnowledgeRunReport",
    "KnowledgeTeam",
    "LLMAgentBackend",
    "OfflineKnowledgeBackend",
    "PriceBand",
    "RelationAnswer",
    "ScenarioAnswer",
    "catalogue_facts",
    "knowledge_text",
]
