"""Describe a catalogue with a chosen backend, the cache and a report: what the commands call.

The LLM client is created and closed inside one event loop, so its connection pool never outlives
the loop that opened it.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path

from offline.data.canonical import Catalogue
from offline.knowledge.cache import KnowledgeCache
from offline.knowledge.facts import catalogue_facts
from offline.knowledge.llm_backend import LLMAgentBackend
from offline.knowledge.metadata_backend import OfflineKnowledgeBackend
from offline.knowledge.run_report import KnowledgeRunReport
from offline.knowledge.schema import ItemKnowledge
from offline.knowledge.team import KnowledgeTeam
from offline.llm.chat import ChatClient
from offline.llm.settings import LLMSettings


class BackendKind(StrEnum):
    offline = "offline"
    llm = "llm"


async def _describe(
    catalogue: Catalogue,
    kind: BackendKind,
    cache: KnowledgeCache | None,
    settings: LLMSettings | None,
    progress: bool,
) -> tuple[list[ItemKnowledge], KnowledgeRunReport]:
    facts = catalogue_facts(catalogue)
    if kind is BackendKind.offline:
        team = KnowledgeTeam(OfflineKnowledgeBackend(), cache, progress=progress)
        return await team.describe_facts(facts)
    settings = settings or LLMSettings()
    if not settings.model:
        raise ValueError("set the chat model (REASEQ_LLM_MODEL) to use the llm backend")
    client = ChatClient(settings)
    try:
        team = KnowledgeTeam(
            LLMAgentBackend(client), cache, concurrency=2 * settings.max_concurrency,
            progress=progress,
        )  # fmt: skip
        return await team.describe_facts(facts)
    finally:
        await client.close()


def describe_catalogue(
    catalogue: Catalogue,
    kind: BackendKind = BackendKind.offline,
    cache_path: Path | None = None,
    settings: LLMSettings | None = None,
    progress: bool = False,
) -> tuple[list[ItemKnowledge], KnowledgeRunReport]:
    """One record per catalogue row and the run's report; answers cached at ``cache_path``."""
    cache = KnowledgeCache(cache_path) if cache_path is not None else None
    try:
        return asyncio.run(_describe(catalogue, kind, cache, settings, progress))
    finally:
        if cache is not None:
            cache.close()


def write_records(records: list[ItemKnowledge], path: Path) -> None:
    """JSON Lines, one record per line, in catalogue order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(record.model_dump_json() + "\n")


def read_records(path: Path) -> list[ItemKnowledge]:
    with path.open(encoding="utf-8") as handle:
        return [ItemKnowledge.model_validate_json(line) for line in handle if line.strip()]
