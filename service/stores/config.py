"""Configuration of each store backend, one pydantic model per backend."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class EmbeddedStoreConfig(BaseModel):
    """In-process store: item vectors from the bundle, users from an ``.npz`` snapshot."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    type: Literal["embedded"] = "embedded"
    """Discriminator of the backend."""

    users_path: Path = Path("var/demo/users.npz")
    """User snapshot written by :func:`service.stores.embedded.write_user_snapshot`; a missing
    file means an empty user store (every user unknown)."""


class RedisStoreConfig(BaseModel):
    """Redis (single node or Cluster-compatible key layout), read in one round trip."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    type: Literal["redis"] = "redis"
    """Discriminator of the backend."""

    url: str = "redis://127.0.0.1:6379/0"
    """redis:// or rediss:// URL of the server."""

    timeout_ms: int = Field(default=50, ge=1)
    """Budget of one round trip; beyond it a fetch raises ``StoreTimeout``."""

    max_connections: int = Field(default=64, ge=1)
    """Size of the connection pool."""


StoreConfig = Annotated[EmbeddedStoreConfig | RedisStoreConfig, Field(discriminator="type")]
