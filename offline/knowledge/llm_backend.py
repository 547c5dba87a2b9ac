"""The knowledge agents on a language model: prompt, parse, validate, repair, or fail clearly.

Each role's answer is read tolerantly (:func:`offline.llm.extract_json_object`) and validated
against its pydantic model. An answer that does not parse or validate is sent back with the error,
up to ``max_repairs`` times; after that, or when the endpoint itself fails, the role raises
:class:`AgentFailure` with a reason, and the team answers it from the offline tables instead.
"""

from __future__ import annotations

from pydantic import ValidationError

from offline.knowledge.agents import (
    AgentBackend,
    AgentFailure,
    AgentReply,
    AgentRole,
    CriticAnswer,
    Findings,
    Usage,
)
from offline.knowledge.critic import guard
from offline.knowledge.facts import ItemFacts
from offline.knowledge.prompts import PROMPTS, render_messages, repair_message
from offline.llm.chat import ChatClient
from offline.llm.endpoint import EndpointError
from offline.llm.json_extract import JSONExtractionError, extract_json_object

#: Failure reasons a run report counts.
INVALID_OUTPUT = "invalid_output"


def _short(error: ValidationError) -> str:
    """A validation error in a few lines: where and what, without echoing the whole input."""
    lines = [f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in error.errors()]
    return "; ".join(lines[:8])


class LLMAgentBackend(AgentBackend):
    """Every role on one chat model."""

    def __init__(self, client: ChatClient, max_repairs: int | None = None) -> None:
        self.client = client
        self.max_repairs = client.settings.max_repairs if max_repairs is None else max_repairs

    @property
    def agent_identity(self) -> str:
        return f"llm:{self.client.model}"

    def http_counts(self) -> tuple[int, int]:
        stats = self.client.endpoint.stats
        return stats.requests, stats.retries

    async def answer(self, role: AgentRole, facts: ItemFacts, findings: Findings) -> AgentReply:
        prompt = PROMPTS[role]
        messages = render_messages(prompt, facts, findings)
        usage = Usage()
        problem = ""
        for attempt in range(self.max_repairs + 1):
            try:
                completion = await self.client.complete(messages, prompt.json_schema(), role.value)
            except EndpointError as error:
                raise AgentFailure(error.reason, error.message[:200], usage, attempt) from None
            usage.add(Usage(completion.prompt_tokens, completion.completion_tokens))
            try:
                answer = prompt.answer_model.model_validate(extract_json_object(completion.content))
            except JSONExtractionError as error:
                problem = str(error)
            except ValidationError as error:
                problem = _short(error)
            else:
                if isinstance(answer, CriticAnswer):
                    answer = guard(answer, facts)
                return AgentReply(answer, usage, repairs=attempt)
            messages = [
                *messages,
                {"role": "assistant", "content": completion.content},
                {"role": "user", "content": repair_message(problem)},
            ]
        raise AgentFailure(INVALID_OUTPUT, problem, usage, self.max_repairs)
