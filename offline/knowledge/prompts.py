"""One versioned chain-of-thought prompt per agent role, and the messages sent for an item.

A prompt's version is part of the cache key: editing a prompt's wording must bump its version, so
answers written under the old wording are not reused as if the new prompt had produced them.
Every prompt asks the model to think first, in the ``reasoning`` field, and then to fill the
answer fields; the JSON schema of the answer is quoted in the prompt and, where the server
supports it, also sent as the ``response_format``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from offline.knowledge.agents import ANSWER_MODELS, AgentAnswer, AgentRole, Findings
from offline.knowledge.facts import ItemFacts

_COMMON = (
    "You are one member of a team that writes structured product knowledge for a shop's "
    "catalogue. Think step by step. Write your reasoning in the `reasoning` field first, then "
    "fill the other fields. Use short lower-case phrases for lists. Reply with one JSON object "
    "that follows this JSON schema, and nothing else:\n{schema}"
)

_TASKS: dict[AgentRole, str] = {
    AgentRole.ATTRIBUTES: (
        "Role: attribute analyst. From the catalogue row, normalise the category path "
        "(department first, the kind of product last), and state the brand, material, style, "
        "price band (budget, value, mid-range, premium, luxury) and the audience. Keep what the "
        "catalogue states; infer a blank field only when the title makes it obvious."
    ),
    AgentRole.SCENARIOS: (
        "Role: scenario reasoner. Given the catalogue row and the analysed attributes, reason "
        "about how people use this product: its use cases, the occasions it is bought for, the "
        "seasons when demand peaks, and the needs it serves."
    ),
    AgentRole.RELATIONS: (
        "Role: relation reasoner. Given the catalogue row and the analysed attributes, reason "
        "about other kinds of product: complements bought together with it, substitutes that "
        "can replace it, kinds people usually buy before it and kinds they buy after it. Name "
        "kinds of product, never brands or single items."
    ),
    AgentRole.CRITIC: (
        "Role: critic. Check the analyst's, scenario reasoner's and relation reasoner's findings "
        "against the catalogue row. The catalogue wins over the agents for what it states "
        "(brand, material, style, audience, price band). Remove claims that contradict the "
        "catalogue or each other, list each conflict you resolved in `conflicts`, and write the "
        "final record with a confidence between 0 and 1 for every field: 1 when the catalogue "
        "states it, lower the more it is inferred, 0 when unknown."
    ),
}


@dataclass(frozen=True)
class AgentPrompt:
    """A role's instructions, their version and the answer they ask for."""

    role: AgentRole
    version: str
    task: str

    @property
    def answer_model(self) -> type[AgentAnswer]:
        return ANSWER_MODELS[self.role]

    def json_schema(self) -> dict[str, Any]:
        return self.answer_model.model_json_schema()

    def system_message(self) -> str:
        schema = json.dumps(self.json_schema(), separators=(",", ":"))
        return f"{self.task}\n\n{_COMMON.format(schema=schema)}"


PROMPTS: dict[AgentRole, AgentPrompt] = {
    role: AgentPrompt(role=role, version="1", task=task) for role, task in _TASKS.items()
}


def _findings_view(findings: Findings) -> str:
    """Earlier answers without their reasoning: the next agent judges conclusions, not prose."""
    parts = {
        name: answer.model_dump(exclude={"reasoning"})
        for name, answer in (
            ("attributes", findings.attributes),
            ("scenarios", findings.scenarios),
            ("relations", findings.relations),
        )
        if answer is not None
    }
    return json.dumps(parts, ensure_ascii=False, indent=1)


def render_messages(
    prompt: AgentPrompt, facts: ItemFacts, findings: Findings
) -> list[dict[str, str]]:
    """The chat messages for one item: the role's system prompt, then the item and findings."""
    user = f"Catalogue row:\n{facts.prompt_view()}"
    if prompt.role is not AgentRole.ATTRIBUTES:
        user += f"\n\nFindings so far:\n{_findings_view(findings)}"
    return [
        {"role": "system", "content": prompt.system_message()},
        {"role": "user", "content": user},
    ]


def repair_message(error: str) -> str:
    """What is sent back when an answer does not parse or validate."""
    return (
        "Your answer could not be used: "
        f"{error}\nReply again with one corrected JSON object that follows the schema, "
        "reasoning first, and nothing else."
    )
