"""The knowledge team: four agent roles, the answer each one writes, and the backend boundary.

Each item is described by a small team that reasons step by step:

1. the **attribute analyst** normalises the category path and reads brand, material, style,
   price band and audience;
2. the **scenario reasoner** works out use cases, occasions, seasons and the needs served;
3. the **relation reasoner** names complementary and substitute kinds of product and what people
   buy before and after it;
4. the **critic** checks the three against the catalogue metadata, resolves conflicts and writes
   the final record with a confidence per field.

Every answer starts with a ``reasoning`` field (the chain of thought, kept in the cache for audit);
only the structured fields after it reach the record that gets encoded. A backend answers one role
for one item at a time; the deterministic tables and an LLM are interchangeable behind it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from offline.knowledge.facts import ItemFacts
from offline.knowledge.schema import KnowledgeField, PriceBand


class AgentRole(StrEnum):
    ATTRIBUTES = "attribute-analyst"
    SCENARIOS = "scenario-reasoner"
    RELATIONS = "relation-reasoner"
    CRITIC = "critic"


#: The order the team works in: roles in one stage only read the stages before theirs.
STAGES: tuple[tuple[AgentRole, ...], ...] = (
    (AgentRole.ATTRIBUTES,),
    (AgentRole.SCENARIOS, AgentRole.RELATIONS),
    (AgentRole.CRITIC,),
)

Phrases = list[str]


class AgentAnswer(BaseModel):
    """Common to every answer: the reasoning, written before the structured fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reasoning: str = Field(description="Step-by-step reasoning that leads to the answer fields.")


class AttributeAnswer(AgentAnswer):
    category_path: list[str] = Field(
        min_length=1, description="Normalised category path, department first, leaf kind last."
    )
    brand: str = ""
    material: str = ""
    style: str = ""
    price_band: PriceBand
    audience: str = ""


class ScenarioAnswer(AgentAnswer):
    use_cases: Phrases = Field(default_factory=list, description="What people buy it for.")
    occasions: Phrases = Field(default_factory=list, description="Events it is bought for.")
    seasons: Phrases = Field(default_factory=list, description="When demand peaks.")
    needs: Phrases = Field(default_factory=list, description="The needs the item serves.")


class RelationAnswer(AgentAnswer):
    complements: Phrases = Field(default_factory=list, description="Kinds bought together.")
    substitutes: Phrases = Field(default_factory=list, description="Kinds that replace it.")
    bought_before: Phrases = Field(default_factory=list, description="Kinds bought before it.")
    bought_after: Phrases = Field(default_factory=list, description="Kinds bought after it.")


class CriticAnswer(AttributeAnswer, ScenarioAnswer, RelationAnswer):
    """The reviewed record: every field, plus a confidence in [0, 1] per field."""

    confidence: dict[KnowledgeField, float] = Field(
        description="Per field: 1 = stated by the catalogue, lower = inferred, 0 = unknown."
    )
    conflicts: Phrases = Field(
        default_factory=list,
        description="Disagreements found between the agents and the catalogue.",
    )


ANSWER_MODELS: dict[AgentRole, type[AgentAnswer]] = {
    AgentRole.ATTRIBUTES: AttributeAnswer,
    AgentRole.SCENARIOS: ScenarioAnswer,
    AgentRole.RELATIONS: RelationAnswer,
    AgentRole.CRITIC: CriticAnswer,
}


@dataclass(frozen=True)
class Findings:
    """What the earlier stages found about one item (``None``: not run yet)."""

    attributes: AttributeAnswer | None = None
    scenarios: ScenarioAnswer | None = None
    relations: RelationAnswer | None = None


@dataclass
class Usage:
    """Tokens a call spent, as the server's ``usage`` reports them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


@dataclass(frozen=True)
class AgentReply:
    """A validated answer and what it cost."""

    answer: AgentAnswer
    usage: Usage = field(default_factory=Usage)
    repairs: int = 0


class AgentFailure(Exception):
    """A role could not be answered; the team falls back to the offline tables and counts why."""

    def __init__(
        self, reason: str, detail: str = "", usage: Usage | None = None, repairs: int = 0
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail
        self.usage, self.repairs = usage or Usage(), repairs


class AgentBackend(ABC):
    """Answers one agent role for one item."""

    @property
    @abstractmethod
    def agent_identity(self) -> str:
        """Names the model behind the answers; part of the cache key."""

    @abstractmethod
    async def answer(self, role: AgentRole, facts: ItemFacts, findings: Findings) -> AgentReply:
        """The role's validated answer, or :class:`AgentFailure`."""

    def http_counts(self) -> tuple[int, int]:
        """(requests, retries) sent so far; a backend that sends none keeps the default."""
        return 0, 0
