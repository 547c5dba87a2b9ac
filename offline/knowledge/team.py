"""Run the knowledge team over a catalogue: stages in order, items concurrently, answers cached.

For each item the attribute analyst answers first, the scenario and relation reasoners then work
in parallel on its findings, and the critic writes the record. A role the backend cannot answer
(after its retries and repairs) is answered by the offline tables and counted as a fallback; the
item still gets a valid record. Only answers whose inputs all came from the backend are cached,
so a rerun asks the backend again exactly where it fell short before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tqdm import tqdm

from offline.data.canonical import Catalogue
from offline.knowledge.agents import (
    STAGES,
    AgentAnswer,
    AgentBackend,
    AgentFailure,
    AgentRole,
    AttributeAnswer,
    CriticAnswer,
    Findings,
    RelationAnswer,
    ScenarioAnswer,
)
from offline.knowledge.backend import KnowledgeBackend
from offline.knowledge.cache import KnowledgeCache
from offline.knowledge.critic import to_record
from offline.knowledge.facts import ItemFacts, catalogue_facts
from offline.knowledge.metadata_backend import OfflineKnowledgeBackend
from offline.knowledge.prompts import PROMPTS
from offline.knowledge.run_report import KnowledgeRunReport
from offline.knowledge.schema import ItemKnowledge


@dataclass(frozen=True)
class _Step:
    answer: AgentAnswer
    source: str  # "cache", "backend" or "fallback"
    answered_by: str


def _with(findings: Findings, role: AgentRole, answer: AgentAnswer) -> Findings:
    if isinstance(answer, AttributeAnswer) and role is AgentRole.ATTRIBUTES:
        return Findings(answer, findings.scenarios, findings.relations)
    if isinstance(answer, ScenarioAnswer) and role is AgentRole.SCENARIOS:
        return Findings(findings.attributes, answer, findings.relations)
    if isinstance(answer, RelationAnswer) and role is AgentRole.RELATIONS:
        return Findings(findings.attributes, findings.scenarios, answer)
    return findings


class KnowledgeTeam(KnowledgeBackend):
    """The four agents on one backend, with the offline tables as the fallback."""

    def __init__(
        self,
        backend: AgentBackend,
        cache: KnowledgeCache | None = None,
        *,
        concurrency: int = 16,
        progress: bool = False,
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.fallback = OfflineKnowledgeBackend()
        self.concurrency = concurrency
        self.progress = progress
        self.last_report: KnowledgeRunReport | None = None

    @property
    def name(self) -> str:
        return f"team:{self.backend.agent_identity}"

    @property
    def version(self) -> str:
        return "+".join(f"{role.value}-v{prompt.version}" for role, prompt in PROMPTS.items())

    def describe(self, catalogue: Catalogue) -> list[ItemKnowledge]:
        records, self.last_report = asyncio.run(self.describe_facts(catalogue_facts(catalogue)))
        return records

    async def describe_facts(
        self, items: Sequence[ItemFacts]
    ) -> tuple[list[ItemKnowledge], KnowledgeRunReport]:
        """One record per item, in order, and the report of the run."""
        started = time.perf_counter()
        report = KnowledgeRunReport(backend=self.backend.agent_identity, items=len(items))
        semaphore = asyncio.Semaphore(self.concurrency)
        bar = tqdm(total=len(items), unit="item", desc="knowledge", disable=not self.progress)

        async def one(facts: ItemFacts) -> ItemKnowledge:
            async with semaphore:
                record = await self._describe_item(facts, report)
            bar.update()
            bar.set_postfix(fallbacks=sum(report.fallbacks.values()), refresh=False)
            return record

        try:
            records = await asyncio.gather(*(one(facts) for facts in items))
        finally:
            bar.close()
            if self.cache is not None:
                self.cache.commit()
        report.http_requests, report.http_retries = self.backend.http_counts()
        report.seconds = time.perf_counter() - started
        return list(records), report

    async def _describe_item(self, facts: ItemFacts, report: KnowledgeRunReport) -> ItemKnowledge:
        content_hash = facts.content_hash()
        findings, trusted, sources = Findings(), True, set()
        critic: _Step | None = None
        for stage in STAGES:
            steps = await asyncio.gather(
                *(
                    self._step(role, facts, findings, content_hash, trusted, report)
                    for role in stage
                )
            )
            for role, step in zip(stage, steps, strict=True):
                findings = _with(findings, role, step.answer)
                trusted &= step.source != "fallback"
                sources.add(step.source)
                critic = step if role is AgentRole.CRITIC else critic
        if self.cache is not None:
            self.cache.commit()
        report.items_from_cache += sources == {"cache"}
        report.items_with_fallback += "fallback" in sources
        assert critic is not None and isinstance(critic.answer, CriticAnswer)
        return to_record(critic.answer, facts, critic.answered_by)

    async def _step(
        self,
        role: AgentRole,
        facts: ItemFacts,
        findings: Findings,
        content_hash: str,
        trusted: bool,
        report: KnowledgeRunReport,
    ) -> _Step:
        prompt, model = PROMPTS[role], self.backend.agent_identity
        key = (content_hash, role.value, prompt.version, model)
        cached = self.cache.get(*key) if self.cache is not None and trusted else None
        if cached is not None:
            report.cached_answers += 1
            return _Step(prompt.answer_model.model_validate_json(cached), "cache", model)
        report.agent_calls += 1
        try:
            reply = await self.backend.answer(role, facts, findings)
        except AgentFailure as failure:
            report.count_fallback(failure.reason)
            report.repairs += failure.repairs
            report.prompt_tokens += failure.usage.prompt_tokens
            report.completion_tokens += failure.usage.completion_tokens
            fallback = await self.fallback.answer(role, facts, findings)
            return _Step(fallback.answer, "fallback", self.fallback.agent_identity)
        report.llm_successes += 1
        report.repairs += reply.repairs
        report.prompt_tokens += reply.usage.prompt_tokens
        report.completion_tokens += reply.usage.completion_tokens
        if isinstance(reply.answer, CriticAnswer):
            report.critic_conflicts += len(reply.answer.conflicts)
        if self.cache is not None and trusted:
            self.cache.put(*key, facts.item_id, reply.answer.model_dump_json())
        return _Step(reply.answer, "backend", model)
