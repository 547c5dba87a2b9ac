"""Service settings: the one place that reads the environment (prefix ``REASEQ_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.errors import BundleNotFoundError
from service.stores.config import EmbeddedStoreConfig, RedisStoreConfig, StoreConfig

CURRENT_FILE = "CURRENT"


class Settings(BaseSettings):
    """Every knob of the ranking service; each field reads ``REASEQ_<FIELD NAME>``."""

    model_config = SettingsConfigDict(env_prefix="REASEQ_", extra="ignore", populate_by_name=True)

    host: str = Field(default="127.0.0.1", description="Interface the HTTP server binds.")
    port: int = Field(default=8000, ge=1, le=65535)
    bundle_root: Path = Field(default=Path("bundles"), description="Folder of bundle versions.")
    bundle_version: str | None = Field(
        default=None, description="Bundle to serve; default: the version in <bundle_root>/CURRENT."
    )
    store: Literal["embedded", "redis"] = Field(
        default="embedded", description="Where user data and item vectors come from."
    )
    redis_url: str = Field(default="redis://127.0.0.1:6379/0")
    redis_timeout_ms: int = Field(
        default=50, ge=1, le=60_000, description="Budget of one store round trip."
    )
    redis_max_connections: int = Field(default=64, ge=1)
    embedded_users_path: Path = Field(
        default=Path("var/demo/users.npz"), description="User snapshot of the embedded store."
    )
    max_candidates: int = Field(default=2000, ge=1, description="Most candidates per request.")
    max_recent_events: int = Field(default=256, ge=0, description="Most recent_events per request.")
    default_top_k: int | None = Field(
        default=None, ge=1, description="top_k when a request omits it; unset = return all."
    )
    graph_mode: Literal["split", "full"] = Field(
        default="split",
        description="split: encoders, NumPy attention, scorer; full: the single full graph.",
    )
    onnx_intra_op_threads: int = Field(
        default=1, ge=0, description="onnxruntime intra-op threads per graph; 0 = its default."
    )
    admin_api_key: SecretStr | None = Field(
        default=None, description="X-API-Key of the admin endpoints; unset = admin disabled."
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    graceful_shutdown_s: int | None = Field(
        default=None,
        ge=1,
        le=3600,
        description="After SIGTERM, the longest wait for in-flight requests; unset = no limit.",
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="json: one JSON object per line; text: for a terminal."
    )
    access_log: bool = Field(default=True, description="One log line per HTTP request.")
    workers: int = Field(
        default=1, ge=1, le=64, description="uvicorn worker processes; >1 needs a metrics dir."
    )
    metrics_multiproc_dir: Path | None = Field(
        default=None,
        # The variable prometheus-client itself reads, so both always agree.
        validation_alias="PROMETHEUS_MULTIPROC_DIR",
        description="PROMETHEUS_MULTIPROC_DIR: where workers share their metric values.",
    )
    latency_objective_ms: float = Field(
        default=50.0, gt=0, le=10_000, description="Latency objective of /v1/rank (a bucket edge)."
    )
    tracing_enabled: bool = Field(
        default=False, description="OpenTelemetry spans per request and stage (tracing extra)."
    )
    tracing_exporter: Literal["otlp", "console"] = Field(
        default="otlp", description="otlp: to OTEL_EXPORTER_OTLP_ENDPOINT; console: stdout."
    )
    tracing_service_name: str = Field(default="reaseq-ranking", description="service.name.")

    def secret_values(self) -> list[str]:
        """Values that must never reach a log line."""
        secrets = [self.admin_api_key.get_secret_value()] if self.admin_api_key else []
        return [s for s in secrets if s]

    def resolve_bundle_dir(self) -> Path:
        """The directory of the bundle to serve."""
        version = self.bundle_version
        if version is None:
            current = self.bundle_root / CURRENT_FILE
            if not current.is_file():
                raise BundleNotFoundError(
                    "no bundle version: set REASEQ_BUNDLE_VERSION or write the version to "
                    f"{current}"
                )
            version = current.read_text().strip()
        bundle_dir = self.bundle_root / version
        if not bundle_dir.is_dir():
            raise BundleNotFoundError(f"bundle {version!r} not found under {self.bundle_root}")
        return bundle_dir

    def store_config(self) -> StoreConfig:
        """The configuration of the chosen store backend."""
        if self.store == "redis":
            return RedisStoreConfig(
                type="redis",
                url=self.redis_url,
                timeout_ms=self.redis_timeout_ms,
                max_connections=self.redis_max_connections,
            )
        return EmbeddedStoreConfig(type="embedded", users_path=self.embedded_users_path)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


SettingsDep = Annotated[Settings, Depends(get_settings)]
