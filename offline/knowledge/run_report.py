"""What a knowledge run did, counted, so a fallback or a repair is never silent."""

from __future__ import annotations

from pydantic import BaseModel, Field


class KnowledgeRunReport(BaseModel):
    """Counts of one run of the knowledge team over a catalogue."""

    backend: str = Field(description="Model behind the agents (the API key is never recorded).")
    items: int = 0
    items_from_cache: int = Field(default=0, description="Every answer came from the cache.")
    items_with_fallback: int = Field(default=0, description="At least one role fell back.")
    agent_calls: int = Field(default=0, description="Roles answered by the backend (not cached).")
    cached_answers: int = 0
    llm_successes: int = Field(default=0, description="Backend answers that validated.")
    repairs: int = Field(default=0, description="Re-asks after an invalid answer.")
    fallbacks: dict[str, int] = Field(
        default_factory=dict, description="Roles answered by the offline tables, by reason."
    )
    critic_conflicts: int = Field(default=0, description="Conflicts the critic resolved.")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    http_requests: int = 0
    http_retries: int = 0
    seconds: float = 0.0

    def count_fallback(self, reason: str) -> None:
        self.fallbacks[reason] = self.fallbacks.get(reason, 0) + 1

    def summary(self) -> str:
        fallbacks = sum(self.fallbacks.values())
        return (
            f"{self.items} items ({self.items_from_cache} from cache) with {self.backend}: "
            f"{self.llm_successes} answers, {self.repairs} repairs, {fallbacks} fallbacks "
            f"{self.fallbacks or ''}, tokens {self.prompt_tokens} prompt / "
            f"{self.completion_tokens} completion, {self.seconds:.1f} s"
        )
