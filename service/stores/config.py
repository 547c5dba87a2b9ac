"""Configuration of each store backend, one pydantic model per backend."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RedisDsn,
    TypeAdapter,
    ValidationError,
)
from redis.connection import parse_url

from service.stores.event_log import DEFAULT_ID_WINDOW

#: The user snapshot ``reaseq demo`` writes, served when nothing names another.
DEMO_USERS_PATH = Path("var/demo/users.npz")
REDIS_URL_FORM = "redis://[[user]:password@]host[:port][/db] (rediss:// for TLS)"
_REDIS_DSN: TypeAdapter[RedisDsn] = TypeAdapter(RedisDsn)


def require_scheme(url: object) -> object:
    """``url`` unless it is text without a scheme, the usual mistake (``localhost:6379``, which
    a URL parser would read as the scheme ``localhost``): then a ``ValueError`` that shows the
    form."""
    if isinstance(url, str) and "://" not in url:
        raise ValueError(f"not a Redis URL: expected {REDIS_URL_FORM}")
    return url


def check_redis_url(url: str) -> str:
    """``url`` if it is a Redis URL (pydantic's ``RedisDsn``: redis:// or rediss:// and a host)
    that the Redis client can connect by; else a ``ValueError`` that shows the form."""
    require_scheme(url)
    try:
        _REDIS_DSN.validate_python(url)
        parse_url(url)
    except ValidationError as error:
        reason = error.errors()[0]["msg"]
        raise ValueError(f"not a Redis URL ({reason}); expected {REDIS_URL_FORM}") from None
    except ValueError as error:
        raise ValueError(f"not a Redis URL ({error}); expected {REDIS_URL_FORM}") from None
    return url


#: A Redis URL as text, checked when the configuration is read rather than at the first
#: connection (the store configurations, the command line).
RedisUrl = Annotated[str, AfterValidator(check_redis_url)]
#: A Redis URL in the service settings: pydantic's ``RedisDsn``, with the missing scheme named.
RedisSettingUrl = Annotated[RedisDsn, BeforeValidator(require_scheme)]


class EmbeddedStoreConfig(BaseModel):
    """In-process store: item vectors from the bundle, users from an ``.npz`` snapshot."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    type: Literal["embedded"] = "embedded"
    """Discriminator of the backend."""

    users_path: Path = DEMO_USERS_PATH
    """User snapshot written by :func:`service.stores.embedded.write_user_snapshot`; a missing
    file means an empty user store (every user unknown)."""

    event_id_window: int = Field(default=DEFAULT_ID_WINDOW, ge=1)
    """Recent event IDs remembered per user to skip replayed events."""

    journal_path: Path | None = None
    """Where the workers of one service share appended events
    (:mod:`service.stores.event_journal`); None: in this process only."""


class RedisStoreConfig(BaseModel):
    """Redis, a single node or a Redis Cluster, read in one round trip (one per node)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    type: Literal["redis"] = "redis"
    """Discriminator of the backend."""

    url: RedisUrl = "redis://127.0.0.1:6379/0"
    """redis:// or rediss:// URL of the server (with ``cluster``: of any node, database 0)."""

    cluster: bool = False
    """Talk to a Redis Cluster: discover its nodes from ``url``, route each key to its slot."""

    timeout_ms: int = Field(default=50, ge=1)
    """Budget of one round trip; beyond it a fetch raises ``StoreTimeout``."""

    max_connections: int = Field(default=64, ge=1)
    """Size of the connection pool (per node in a cluster)."""

    breaker_failures: int = Field(default=5, ge=0)
    """Store failures in a row that open the circuit breaker; 0 never opens it."""

    breaker_cool_down_ms: int = Field(default=5000, ge=1)
    """How long an open breaker fails fast before one call probes the store again."""

    event_id_window: int = Field(default=DEFAULT_ID_WINDOW, ge=1)
    """Recent event IDs remembered per user to skip replayed events."""


StoreConfig = Annotated[EmbeddedStoreConfig | RedisStoreConfig, Field(discriminator="type")]
