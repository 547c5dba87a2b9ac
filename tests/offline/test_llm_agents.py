"""The knowledge team on a real local HTTP server that answers like an LLM, well and badly.

Every path must end in a valid record: an answer that validates (maybe after retries or a
repair), or a counted fallback to the offline tables with its reason.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from offline.data.canonical import Catalogue
from offline.knowledge import (
    AgentBackend,
    AgentReply,
    AgentRole,
    Findings,
    ItemFacts,
    ItemKnowledge,
    KnowledgeCache,
    KnowledgeTeam,
    LLMAgentBackend,
    OfflineKnowledgeBackend,
    catalogue_facts,
)
from offline.knowledge.runner import BackendKind, describe_catalogue
from offline.llm import ChatClient, LLMSettings
from tests.offline.llm_server import USAGE, ServerScript

API_KEY = "sk-test-secret-0123456789"
GOOD = ("ok", "fenced", "bad-json-once", "schema-once", "429-once", "contradict")
BAD = {
    "always-invalid": "invalid_output",
    "500-always": "server_error",
    "slow": "timeout",
    "truncated": "truncated",
    "bad-request": "client_error",
}
#: Titles whose requests end without tokens to count (the truncated answer's are not reported).
UNANSWERED = ("500-always", "slow", "429-once", "truncated", "bad-request")


def catalogue(titles: list[str], brand: str = "Acme") -> Catalogue:
    n = len(titles)
    return Catalogue(
        item_ids=np.array([f"i{k}" for k in range(n)]),
        category_paths=np.array(["Home>Kitchen>Cookware"] * n),
        brands=np.array([brand] * n),
        price_bands=np.full(n, 3, dtype=np.int32),
        prices=np.full(n, 49.5, dtype=np.float32),
        titles=np.array(titles),
        materials=np.array(["steel"] * n),
        styles=np.array(["modern"] * n),
        audiences=np.array([""] * n),
        launch_ts=np.zeros(n, dtype=np.int64),
    )


def settings(url: str, **overrides: object) -> LLMSettings:
    values: dict[str, object] = {
        "base_url": url,
        "model": "test-model",
        "api_key": API_KEY,
        "timeout_s": 2.0,  # a normal answer must fit even on a busy CI machine
        "max_retries": 1,
        "max_repairs": 1,
        "max_concurrency": 8,
    }
    return LLMSettings(**(values | overrides))  # type: ignore[arg-type]


def test_every_path_ends_in_a_record_or_a_counted_fallback(
    script: ServerScript, url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    titles = [*GOOD, *BAD]
    records, report = describe_catalogue(
        catalogue(titles), BackendKind.llm, tmp_path / "cache.sqlite", settings(url)
    )
    assert [r.item_id for r in records] == [f"i{k}" for k in range(len(titles))]
    by_title = dict(zip(titles, records, strict=True))
    for title in GOOD:
        record = by_title[title]
        assert record.backend == "llm:test-model", title
        assert record.complements == ["batteries"] and record.needs == ["reliability"]
        assert record.confidence["use_cases"] == 0.9
    for title in BAD:
        assert by_title[title].backend == OfflineKnowledgeBackend().identity
        assert "olive oil" in by_title[title].complements  # from the tables
    # The critic's guard puts the catalogue's brand back.
    assert (
        by_title["contradict"].brand == "Acme" and by_title["contradict"].confidence["brand"] == 1
    )
    roles = len(AgentRole)
    assert report.items == len(titles)
    assert report.llm_successes == roles * len(GOOD)
    assert report.fallbacks == {reason: roles for reason in BAD.values()}
    assert report.items_with_fallback == len(BAD)
    assert report.repairs == roles * 2 + roles * 1  # two repaired once each; one gave up after 1
    assert report.critic_conflicts >= 1
    answered = sum(1 for s in script.seen if s.title not in UNANSWERED)
    answered += roles  # the 429 item's second attempts
    assert report.prompt_tokens == USAGE["prompt_tokens"] * answered
    assert report.completion_tokens == USAGE["completion_tokens"] * answered
    # A request that timed out may reach the server's log only after the client gave up.
    assert report.http_retries > 0 and report.http_requests >= len(script.seen)
    # The key goes in the header, and nowhere else.
    assert {s.authorization for s in script.seen} == {f"Bearer {API_KEY}"}
    assert API_KEY not in caplog.text and API_KEY not in report.model_dump_json()
    assert API_KEY not in repr(settings(url))


def test_reasoning_is_cached_for_audit_but_not_encoded(url: str, tmp_path: Path) -> None:
    records, _ = describe_catalogue(
        catalogue(["ok"]), BackendKind.llm, tmp_path / "c.sqlite", settings(url)
    )
    with KnowledgeCache(tmp_path / "c.sqlite") as cache:
        answers = cache.answers_for("i0")
    assert set(answers) == {role.value for role in AgentRole}
    assert all("Step 1: read the row" in text for text in answers.values())
    assert "reasoning" not in records[0].model_dump()


def test_rerun_only_asks_for_new_or_changed_items(
    script: ServerScript, url: str, tmp_path: Path
) -> None:
    cache, config = tmp_path / "cache.sqlite", settings(url)
    items = catalogue(["ok", "fenced", "429-once"])
    first, report = describe_catalogue(items, BackendKind.llm, cache, config)
    assert report.agent_calls == 3 * len(AgentRole)
    before = len(script.seen)
    again, report = describe_catalogue(items, BackendKind.llm, cache, config)
    assert len(script.seen) == before and again == first
    assert report.items_from_cache == 3 and report.agent_calls == 0
    changed = replace(items, brands=np.array(["Acme", "Brandnew", "Acme"]))
    _, report = describe_catalogue(changed, BackendKind.llm, cache, config)
    new = script.seen[before:]
    assert {s.title for s in new} == {"fenced"} and len(new) == len(AgentRole)
    assert report.items_from_cache == 2


def test_fallbacks_are_not_cached_so_a_rerun_tries_again(
    script: ServerScript, url: str, tmp_path: Path
) -> None:
    cache, config = tmp_path / "cache.sqlite", settings(url)
    items = catalogue(["500-always"])
    describe_catalogue(items, BackendKind.llm, cache, config)
    before = len(script.seen)
    _, report = describe_catalogue(items, BackendKind.llm, cache, config)
    assert len(script.seen) > before and report.fallbacks == {"server_error": len(AgentRole)}


class _Crashing(AgentBackend):
    """Delegates to the LLM backend until the armed title comes up, then dies mid-run."""

    def __init__(self, inner: LLMAgentBackend, crash_on: str | None) -> None:
        self.inner, self.crash_on = inner, crash_on

    @property
    def agent_identity(self) -> str:
        return self.inner.agent_identity

    async def answer(self, role: AgentRole, facts: ItemFacts, findings: Findings) -> AgentReply:
        if facts.title == self.crash_on:
            raise RuntimeError("process killed")
        return await self.inner.answer(role, facts, findings)


async def _run(
    url: str, cache: KnowledgeCache, items: Catalogue, crash_on: str | None
) -> list[ItemKnowledge]:
    client = ChatClient(settings(url))
    try:
        team = KnowledgeTeam(_Crashing(LLMAgentBackend(client), crash_on), cache, concurrency=1)
        records, _ = await team.describe_facts(catalogue_facts(items))
        return records
    finally:
        await client.close()


def test_a_crashed_run_resumes_where_it_stopped(
    script: ServerScript, url: str, tmp_path: Path
) -> None:
    titles = ["ok", "fenced", "crash", "schema-once", "429-once"]
    items = catalogue(titles)
    cache = KnowledgeCache(tmp_path / "cache.sqlite")
    with pytest.raises(RuntimeError, match="killed"):
        asyncio.run(_run(url, cache, items, crash_on="crash"))
    cache.close()
    assert set(script.titles()) == {"ok", "fenced"}
    before = len(script.seen)
    with KnowledgeCache(tmp_path / "cache.sqlite") as reopened:
        records = asyncio.run(_run(url, reopened, items, crash_on=None))
    assert len(records) == len(titles)
    assert {s.title for s in script.seen[before:]} == {"crash", "schema-once", "429-once"}


def test_unsupported_json_schema_falls_back_to_json_object(script: ServerScript, url: str) -> None:
    script.supports_json_schema = False
    records, report = describe_catalogue(
        catalogue(["ok", "fenced"]), BackendKind.llm, None, settings(url)
    )
    assert report.fallbacks == {} and all(r.backend == "llm:test-model" for r in records)
    modes = [s.response_format for s in script.seen]
    # Refused once for each call already in flight (one per item), then never asked again.
    assert 1 <= modes.count("json_schema") <= 2
    assert (
        modes.count("json_object") == 2 * len(AgentRole) == len(modes) - modes.count("json_schema")
    )


def test_offline_team_writes_what_the_fast_path_writes(tiny: tuple) -> None:  # type: ignore[type-arg]
    dataset = tiny[0]
    fast = OfflineKnowledgeBackend().describe(dataset.catalogue)
    team = KnowledgeTeam(OfflineKnowledgeBackend())
    assert team.describe(dataset.catalogue) == fast
    assert team.last_report is not None and team.last_report.fallbacks == {}
