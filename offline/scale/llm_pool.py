"""The LLM knowledge team on a pool of Ray actors, paced, on the shared knowledge cache.

Each actor runs the team (:class:`offline.knowledge.team.KnowledgeTeam`, the same agents, repairs
and fallbacks as a single-process run) over one shard at a time, with its share of the calls per
second and of the endpoint's concurrency. Every shard opens the SQLite cache
(:mod:`offline.knowledge.cache`) that single-process runs use, so a rerun, on Ray or not, asks the
model only where an answer is missing; the cache file must be on a filesystem every worker sees
(one node, or a shared volume). SQLite's write lock serialises the actors' short commits.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from offline.knowledge.cache import KnowledgeCache
from offline.knowledge.facts import ItemFacts, catalogue_facts
from offline.knowledge.llm_backend import LLMAgentBackend
from offline.knowledge.run_report import KnowledgeRunReport
from offline.knowledge.schema import ItemKnowledge
from offline.knowledge.team import KnowledgeTeam
from offline.llm.chat import ChatClient, Completion
from offline.llm.settings import LLMSettings
from offline.scale.catalogue_shards import shard_catalogue
from offline.scale.shards import concatenated, shard_arrays


class RequestPace:
    """At most ``per_s`` calls start per second in this process: each waits for its slot.

    Slots are kept as a time, not as an asyncio primitive, so one pace serves the event loop of
    every shard an actor runs."""

    def __init__(self, per_s: float | None) -> None:
        if per_s is not None and per_s <= 0:
            raise ValueError("requests per second must be positive")
        self.interval = 0.0 if per_s is None else 1.0 / per_s
        self._next_at = 0.0

    async def wait(self) -> None:
        if self.interval == 0:
            return
        now = time.monotonic()
        at = max(now, self._next_at)
        self._next_at = at + self.interval
        if at > now:
            await asyncio.sleep(at - now)


class PacedChatClient(ChatClient):
    """A chat client whose calls wait for their slot of a :class:`RequestPace` (a call's own
    retries and format downgrades go out without waiting)."""

    def __init__(self, settings: LLMSettings, pace: RequestPace) -> None:
        super().__init__(settings)
        self.pace = pace

    async def complete(
        self, messages: list[dict[str, str]], schema: dict[str, Any], name: str
    ) -> Completion:
        await self.pace.wait()
        return await super().complete(messages, schema, name)


class LLMDescriber:
    """A Ray Data callable class: one actor's team, describing a shard of the catalogue per call.

    Output rows: ``row`` (catalogue row), ``record`` (the record as JSON) and ``report`` (the
    shard's :class:`KnowledgeRunReport` as JSON on its first row, empty on the others)."""

    def __init__(
        self,
        settings: LLMSettings,
        cache_path: str | None,
        requests_per_s: float | None,
        concurrency: int,
    ) -> None:
        self.settings = settings
        self.cache_path = None if cache_path is None else Path(cache_path)
        self.pace = RequestPace(requests_per_s)
        self.concurrency = concurrency

    def __call__(self, batch: pa.Table) -> dict[str, npt.NDArray[Any]]:
        return concatenated([self._shard(shard_arrays(batch, row)) for row in range(len(batch))])

    def _shard(self, shard: dict[str, Any]) -> dict[str, npt.NDArray[Any]]:
        facts = catalogue_facts(shard_catalogue(shard))
        # Opened per shard: a connection must stay in the thread that opened it.
        cache = KnowledgeCache(self.cache_path) if self.cache_path is not None else None
        try:
            records, report = asyncio.run(self._describe(facts, cache))
        finally:
            if cache is not None:
                cache.close()
        reports = [report.model_dump_json()] + [""] * (len(records) - 1)
        return {
            "row": shard["start"] + np.arange(len(records), dtype=np.int64),
            "record": np.asarray([r.model_dump_json() for r in records], dtype=object),
            "report": np.asarray(reports[: len(records)], dtype=object),
        }

    async def _describe(
        self, facts: list[ItemFacts], cache: KnowledgeCache | None
    ) -> tuple[list[ItemKnowledge], KnowledgeRunReport]:
        # Created and closed inside this event loop, as the single-process runner does.
        client = PacedChatClient(self.settings, self.pace)
        try:
            team = KnowledgeTeam(LLMAgentBackend(client), cache, concurrency=self.concurrency)
            return await team.describe_facts(facts)
        finally:
            await client.close()


_SUMMED = (
    "items_from_cache", "items_with_fallback", "agent_calls", "cached_answers", "llm_successes",
    "repairs", "critic_conflicts", "prompt_tokens", "completion_tokens", "http_requests",
    "http_retries",
)  # fmt: skip


def merged_report(backend: str, items: int, parts: list[str], seconds: float) -> KnowledgeRunReport:
    """The run's report from its shards' reports: counts summed, the run's wall time."""
    report = KnowledgeRunReport(backend=backend, items=items, seconds=seconds)
    for text in parts:
        part = KnowledgeRunReport.model_validate_json(text)
        for name in _SUMMED:
            setattr(report, name, getattr(report, name) + getattr(part, name))
        for reason, count in part.fallbacks.items():
            report.fallbacks[reason] = report.fallbacks.get(reason, 0) + count
    return report
