"""The boundary every knowledge producer sits behind.

The deterministic offline backend and a later LLM-agent backend are interchangeable: the encode
step only sees :class:`ItemKnowledge` records, one per catalogue row, in catalogue order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from offline.data.canonical import Catalogue
from offline.knowledge.schema import ItemKnowledge


class KnowledgeBackend(ABC):
    """Turns catalogue metadata into structured item knowledge."""

    @property
    @abstractmethod
    def name(self) -> str:
        """Short identity, recorded in every record it writes."""

    @property
    @abstractmethod
    def version(self) -> str:
        """Changes whenever the same catalogue would be described differently."""

    @abstractmethod
    def describe(self, catalogue: Catalogue) -> list[ItemKnowledge]:
        """One record per catalogue row, in the catalogue's order."""

    @property
    def identity(self) -> str:
        return f"{self.name}@{self.version}"
